"""worker.stream.batch.classify_records: one partition's records in, records to produce and counts out."""

from __future__ import annotations

import base64
import itertools
from datetime import datetime
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.factories import FakeRecord, inbound_doc, source_of, where
from worker.classify.confirmations import RecentChanges, change_facts, known_change, layout_facts
from worker.classify.decide import classify, decide
from worker.classify.rules import BUILTIN_LAYER, Layer, Rule, RuleBook, compile_layers, default_rulebook
from worker.errors import DeadLetterCode, InputError
from worker.events.inbound import decode, to_message
from worker.events.outgoing import CHANGE_HEAD, decode_change, encode_change, encode_reply
from worker.model import Action, Intent, ScopeLevel, Source
from worker.stream.batch import BatchOutput, classify_records

EMITTED = "2026-11-24T12:00:00.000000Z"
TOPIC = "mo.inbound"


def _doc(text: str, n: int = 0, **changes: Any) -> dict[str, Any]:
    return inbound_doc(
        text,
        message_id=f"m-{n}",
        address=f"+1555000{n:04d}",
        account="acc",
        subaccount="sub",
        **({"received_at": f"2026-11-24T10:00:{n % 60:02d}Z"} | changes),
    )


def _records(values: list[bytes | None], partition: int = 2, first_offset: int = 100) -> list[FakeRecord]:
    return [
        FakeRecord(TOPIC, partition, first_offset + i, 1764000000000 + i, f"k{i}".encode(), value)
        for i, value in enumerate(values)
    ]


def _run(
    records: list[FakeRecord], rulebook: RuleBook | None = None, out: BatchOutput | None = None
) -> BatchOutput:
    out = out or BatchOutput(emitted_at=EMITTED, worker_version="9.9.9")
    classify_records(where(records), records, rulebook or default_rulebook(), out)
    return out


def test_empty_batch() -> None:
    out = _run([])
    assert out.consumed == 0
    assert (out.changes, out.replies, out.dead_letters) == ([], [], [])
    assert out.intents == {}
    assert out.newest_received == {}


def test_mixed_batch_counts_and_outputs() -> None:
    values: list[bytes | None] = [
        orjson.dumps(_doc("STOP", 1)),
        b"{not json",
        orjson.dumps(_doc("hello, is this thing on?", 2)),
        None,
        orjson.dumps(_doc("Start", 3)),
        orjson.dumps(_doc("help", 4)),
        orjson.dumps({**_doc("stop", 5), "text": None}),
        orjson.dumps(_doc("Don't stop!", 6)),
    ]
    out = _run(_records(values))
    assert out.consumed == 8
    assert out.intents == {Intent.OPT_OUT: 1, Intent.OPT_IN: 1, Intent.HELP: 1, Intent.NONE: 2}
    assert out.dead_by_code == {
        DeadLetterCode.INVALID_JSON: 1,
        DeadLetterCode.EMPTY_VALUE: 1,
        DeadLetterCode.INVALID_FIELD: 1,
    }
    # STOP: one block; START with a subaccount and a sender: 6 scopes x 2 categories = 12 unblocks.
    events = [decode_change(value) for _, value in out.changes]
    assert [e.action for e in events] == [Action.BLOCK] + [Action.UNBLOCK] * 12
    assert {source_of(e).message_id for e in events} == {"m-1", "m-3"}
    assert len(out.replies) == 3
    assert len(out.dead_letters) == 3


def test_changes_are_keyed_by_block_and_carry_the_record_coordinates() -> None:
    out = _run(_records([orjson.dumps(_doc("stop", 7))], partition=5, first_offset=31))
    ((key, value),) = out.changes
    event = decode_change(value)
    assert orjson.loads(key) == ["account", "acc", None, None, "sms", "+15550000007"]
    assert (source_of(event).topic, source_of(event).partition, source_of(event).offset) == (TOPIC, 5, 31)
    assert event.occurred_at == "2026-11-24T10:00:07.000000Z"
    assert orjson.loads(value)["emitted_at"] == EMITTED


def test_replies_are_keyed_by_subscriber() -> None:
    out = _run(_records([orjson.dumps(_doc("help", 8))]))
    ((key, value),) = out.replies
    reply = orjson.loads(value)
    assert key == b"+15550000008"
    assert reply["to"] == "+15550000008"
    assert reply["from"] == "12345"
    assert reply["intent"] == "help"
    assert reply["in_reply_to"] == "m-8"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, DeadLetterCode.EMPTY_VALUE),
        (b"", DeadLetterCode.EMPTY_VALUE),
        (b"\xc3\x28", DeadLetterCode.INVALID_UTF8),
        (b"{", DeadLetterCode.INVALID_JSON),
        (b"[]", DeadLetterCode.NOT_AN_OBJECT),
        (orjson.dumps({"text": "STOP"}), DeadLetterCode.MISSING_FIELD),
        (orjson.dumps(_doc("STOP", account_id="")), DeadLetterCode.INVALID_FIELD),
        (orjson.dumps(_doc("é" * 40_000)), DeadLetterCode.TEXT_TOO_LARGE),
        (orjson.dumps(_doc("STOP", received_at="2026-11-24 10:00")), DeadLetterCode.INVALID_TIMESTAMP),
    ],
)
def test_dead_letters_carry_coordinates_and_the_raw_value(value: bytes | None, code: DeadLetterCode) -> None:
    record = FakeRecord(TOPIC, 4, 77, 1764000000123, b"the-key", value)
    out = _run([record])
    assert out.dead_by_code == {code: 1}
    assert out.changes == out.replies == []
    ((key, payload),) = out.dead_letters
    assert key == b"the-key"
    doc = orjson.loads(payload)
    assert doc["stage"] == "classifier"
    assert doc["error"]["code"] == code.value
    assert doc["error"]["detail"]
    assert doc["source"] == {
        "topic": TOPIC,
        "partition": 4,
        "offset": 77,
        "timestamp_ms": 1764000000123,
        "key_b64": base64.b64encode(b"the-key").decode(),
    }
    assert doc["value_b64"] == (None if value is None else base64.b64encode(value).decode())
    assert doc["failed_at"] == EMITTED
    assert doc["worker_version"] == "9.9.9"


def test_dead_letter_of_a_record_without_key() -> None:
    out = _run([FakeRecord(TOPIC, 0, 0, 0, None, b"x")])
    ((key, payload),) = out.dead_letters
    assert key is None
    assert orjson.loads(payload)["source"]["key_b64"] is None


def test_good_records_around_bad_ones_are_still_classified() -> None:
    values: list[bytes | None] = [
        b"\xff",
        orjson.dumps(_doc("STOP", 1)),
        b"",
        b"[1]",
        orjson.dumps(_doc("STOP", 2)),
        b'{"oops"',
    ]
    out = _run(_records(values))
    assert out.intents == {Intent.OPT_OUT: 2}
    assert [source_of(decode_change(v)).offset for _, v in out.changes] == [101, 104]
    assert [orjson.loads(v)["source"]["offset"] for _, v in out.dead_letters] == [100, 102, 103, 105]


def test_newest_received_is_the_last_good_record() -> None:
    values: list[bytes | None] = [orjson.dumps(_doc("hi", 1)), orjson.dumps(_doc("hi", 9)), b"bad"]
    out = _run(_records(values, partition=3))
    expected = datetime.fromisoformat("2026-11-24T10:00:09+00:00").timestamp()
    assert out.newest_received == {(TOPIC, 3): expected}


def test_no_newest_received_when_every_record_is_bad() -> None:
    assert _run(_records([b"bad", None])).newest_received == {}


def test_calls_accumulate_into_one_output() -> None:
    out = _run(_records([orjson.dumps(_doc("stop", 1)), orjson.dumps(_doc("x", 2))], partition=0))
    _run(_records([orjson.dumps(_doc("stop", 3)), b"bad"], partition=1), out=out)
    assert out.consumed == 4
    assert out.intents == {Intent.OPT_OUT: 2, Intent.NONE: 1}
    assert len(out.changes) == 2
    assert len(out.dead_letters) == 1
    assert set(out.newest_received) == {(TOPIC, 0), (TOPIC, 1)}


def test_rules_are_resolved_per_account_subaccount_and_sender() -> None:
    override = Layer(
        True,
        (Rule("halt", Intent.OPT_OUT, ("HALT",), level=ScopeLevel.SENDER, all_channels=True),),
        MappingProxyType({}),
    )
    book = RuleBook(
        compile_layers([BUILTIN_LAYER]),
        (BUILTIN_LAYER,),
        senders={("acc", "12345"): override},
    )
    out = _run(
        _records(
            [
                orjson.dumps(_doc("halt", 1)),
                orjson.dumps(_doc("halt", 2, to="67890")),
                orjson.dumps(_doc("halt", 3, account_id="other")),
            ]
        ),
        book,
    )
    assert out.intents == {Intent.OPT_OUT: 1, Intent.NONE: 2}
    ((key, _),) = out.changes
    assert orjson.loads(key) == ["sender", "acc", None, "12345", "*", "+15550000001"]


def test_same_batch_twice_gives_identical_output() -> None:
    values: list[bytes | None] = [
        orjson.dumps(_doc(t, i)) for i, t in enumerate(["stop", "start", "help", "x"])
    ]
    one, two = _run(_records(values)), _run(_records(values))
    assert one.changes == two.changes
    assert one.replies == two.replies


def test_timestamp_outside_the_utc_range_is_dead_lettered_not_fatal() -> None:
    values: list[bytes | None] = [
        orjson.dumps(_doc("STOP", 1, received_at="0001-01-01T00:00:00+01:00")),
        orjson.dumps(_doc("STOP", 2)),
    ]
    out = _run(_records(values))
    assert out.dead_by_code == {DeadLetterCode.INVALID_TIMESTAMP: 1}
    assert out.intents == {Intent.OPT_OUT: 1}


def _reference(records: list[FakeRecord], book: RuleBook) -> tuple[list[Any], list[Any]]:
    """The objects path the hot loop replaced: decode, decide, then encode each event."""
    changes: list[tuple[bytes, bytes]] = []
    replies: list[tuple[bytes, bytes]] = []
    for record in records:
        try:
            doc, received = decode(record.value)
        except InputError:
            continue
        rules = book.resolve(doc["account_id"], doc.get("subaccount_id"), doc["to"])
        match = classify(doc["text"], rules)
        if match is None:
            continue
        source = Source(record.topic, record.partition, record.offset, doc["message_id"])
        decision = decide(to_message(doc, received), match, rules, source)
        changes += [(key, encode_change(event, EMITTED)) for key, event in decision.changes]
        if decision.reply is not None:
            replies.append((decision.reply.to.encode(), encode_reply(decision.reply, EMITTED)))
    return changes, replies


_TEXTS = [
    *("STOP", "Stop!", "ＳＴＯＰ", "stop all", "START", "unstop", "HELP", "info?", "halt", "STOP ACME"),
    *("arret", "Baja", "please stop texting me", "hello", "Don't stop!", "stop by later?"),
    *("STOP MARKETING", "resume promos", "BAJA PUBLICIDAD"),  # marketing blocks and their lifting
]
_STAMPS = [
    *("2026-11-24T10:00:00Z", "2026-11-24T10:00:00.123Z", "2026-11-24T10:00:00.5+01:00"),
    *("2026-11-24t10:00:00.123456z", "0001-01-01T00:00:00Z"),
]


#: Subscribers as gateways write them: E.164, prefixed, national, not a number at all.
_ADDRESSES = [
    *(
        "+15550000001",
        "+15550000002",
        "whatsapp:+15550000001",
        "WhatsApp:+1 555 000 0002",
        "tel:+15550000001",
    ),
    *("07700 900123", "+44 7700 900123", "rcs:07700900123", "jane@example.com", "messenger:123", "0"),
    *('o"neil@example.com', "josé@example.com", "a\\b"),  # JSON escapes in the joined events
]


def _fused_books() -> tuple[RuleBook, ...]:
    override = Layer(
        True,
        (
            Rule("halt", Intent.OPT_OUT, ("HALT",), level=ScopeLevel.SENDER, all_channels=True),
            Rule("quit-sub", Intent.OPT_OUT, ("STOP ACME",), level=ScopeLevel.SUBACCOUNT),
        ),
        MappingProxyType({}),
    )
    book = RuleBook(compile_layers([BUILTIN_LAYER]), (BUILTIN_LAYER,), senders={("acc", "12345"): override})
    national = Layer(True, (), MappingProxyType({}), default_country="GB")
    gb_book = RuleBook(compile_layers([BUILTIN_LAYER, national]), (BUILTIN_LAYER, national))
    return book, default_rulebook(), gb_book


#: Built once: a rule book and its chat screen take ~0.15 s to build, per example that was most of
#: these hypothesis tests' time.
_FUSED_BOOKS = _fused_books()
_DEFAULT_BOOK = default_rulebook()


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_TEXTS),
            st.sampled_from([None, "sub", "sub-2"]),
            st.sampled_from(["sms", "whatsapp", "rcs"]),
            st.sampled_from(["12345", "67890", "+14155550199", "whatsapp:+1 415 555 0199", "sms:12345"]),
            st.sampled_from(["acc", "other"]),
            st.sampled_from(_STAMPS),
            st.sampled_from(_ADDRESSES),
        ),
        max_size=30,
    )
)
def test_the_fused_decide_and_encode_is_byte_identical_to_the_objects_path(
    rows: list[tuple[str, str | None, str, str, str, str, str]],
) -> None:
    values: list[bytes | None] = [
        orjson.dumps(
            inbound_doc(
                text,
                message_id=f"m-{n}",
                address=address,
                sender=sender,
                account=account,
                subaccount=sub,
                channel=channel,
                received_at=stamp,
            )
        )
        for n, (text, sub, channel, sender, account, stamp, address) in enumerate(rows)
    ]
    records = _records(values)
    for rulebook in _FUSED_BOOKS:
        out = _run(records, rulebook)
        assert (out.changes, out.replies) == _reference(records, rulebook)
    for _, value in out.changes:  # one-confirmation-per-opt-out reads these at fixed positions
        assert layout_facts(value, CHANGE_HEAD) == change_facts(value, CHANGE_HEAD) == known_change(value)


def _stop_from(address: str, n: int, **fields: Any) -> bytes:
    return orjson.dumps(_doc("STOP", n, **{"from": address}, **fields))


def test_the_same_subscriber_written_three_ways_is_one_block_key() -> None:
    national = Layer(True, (), MappingProxyType({}), default_country="GB")
    book = RuleBook(compile_layers([BUILTIN_LAYER, national]), (BUILTIN_LAYER, national))
    out = _run(
        _records(
            [
                _stop_from("+447700900123", 1, channel="whatsapp"),
                _stop_from("whatsapp:+447700900123", 2, channel="whatsapp"),
                _stop_from("whatsapp:07700 900123", 3, channel="sms"),  # the prefix names the channel
            ]
        ),
        book,
    )
    keys = {orjson.loads(key)[-1] for key, _ in out.changes}
    assert keys == {"+447700900123"}
    assert {orjson.loads(key)[4] for key, _ in out.changes} == {"whatsapp"}
    replies = [orjson.loads(value) for _, value in out.replies]
    assert {(r["to"], r["channel"]) for r in replies} == {("+447700900123", "whatsapp")}
    assert {key for key, _ in out.replies} == {b"+447700900123"}
    assert out.uncanonical == {}


def test_addresses_that_cannot_be_canonicalized_stay_as_written_and_are_counted() -> None:
    out = _run(
        _records(
            [
                _stop_from("07700 900123", 1),  # national, and the rules set no country
                _stop_from("jane@example.com", 2, channel="email"),
                _stop_from("messenger:123", 3, channel="messenger"),
                _stop_from("+15550000004", 4),
                orjson.dumps(_doc("hello", 5, **{"from": "not a number"})),  # chat: never canonicalized
            ]
        )
    )
    assert [orjson.loads(key)[-1] for key, _ in out.changes] == [
        "07700 900123", "jane@example.com", "messenger:123", "+15550000004",
    ]  # fmt: skip
    assert out.uncanonical == {"sms": 1, "other": 2}


def test_a_prefixed_sender_is_the_number_and_resolves_its_override() -> None:
    override = Layer(
        True,
        (Rule("halt", Intent.OPT_OUT, ("HALT",), level=ScopeLevel.SENDER, all_channels=True),),
        MappingProxyType({}),
    )
    book = RuleBook(
        compile_layers([BUILTIN_LAYER]), (BUILTIN_LAYER,), senders={("acc", "+14155238886"): override}
    )
    out = _run(_records([orjson.dumps(_doc("halt", 1, to="whatsapp:+14155238886"))]), book)
    ((key, _),) = out.changes
    assert orjson.loads(key) == ["sender", "acc", None, "+14155238886", "*", "+15550000001"]
    (reply,) = [orjson.loads(value) for _, value in out.replies]
    assert (reply["from"], reply["channel"]) == ("+14155238886", "whatsapp")


def test_the_batchs_records_take_their_own_size_in_memory() -> None:
    """orjson.dumps returns bytes in a buffer of 4 KiB or more; the batch's output is held until it
    is acknowledged and its change events are kept for the confirmation window, so they are copied
    to their size (worker.events.outgoing.dumps). These 300 keyword MOs' records (a START lifts up
    to six blocks) are 0.95 MB: 1.2 MB held with the copy, 19.7 MB without it."""
    import gc
    import tracemalloc

    values: list[bytes | None] = [orjson.dumps(_doc("STOP" if n % 3 else "START", n)) for n in range(300)]
    records = _records(values)
    rulebook = default_rulebook()
    _run(records, rulebook)  # first-call costs (caches of scopes and replies) are not per record
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = _run(records, rulebook)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    outputs = out.changes + out.replies
    assert len(outputs) >= 600
    size = sum(len(key) + len(value) for key, value in outputs)
    assert held < 3 * size, f"{held:,} bytes held for {size:,} bytes of records"


@settings(deadline=None, max_examples=50)
@given(
    st.lists(
        st.sampled_from(["STOP", "stop please", "START", "HELP", "hello", "UNSTOP", "bad"]), max_size=40
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=5),
)
def test_a_partition_batch_classified_in_slices_is_classified_as_one(
    texts: list[str], cuts: list[int]
) -> None:
    """The classifier classifies a partition's batch in slices, with turns of the event loop
    between them (worker.stream.classifier): the output, the counts and what the one-confirmation
    memory notes are the same as in one call, so slicing changes nothing but when the loop yields."""
    values: list[bytes | None] = [
        b"not json" if text == "bad" else orjson.dumps(_doc(text, n % 7)) for n, text in enumerate(texts)
    ]
    records = _records(values)
    whole = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9", memory=RecentChanges(60))
    classify_records(where(records), records, _DEFAULT_BOOK, whole)
    sliced = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9", memory=RecentChanges(60))
    bounds = [0, *sorted(min(cut, len(records)) for cut in cuts), len(records)]
    for start, stop in itertools.pairwise(bounds):
        classify_records(where(records), records[start:stop], _DEFAULT_BOOK, sliced)
    assert (sliced.changes, sliced.replies, sliced.dead_letters) == (
        whole.changes,
        whole.replies,
        whole.dead_letters,
    )
    assert (sliced.intents, sliced.suppressed) == (whole.intents, whole.suppressed)
    assert _remembered(sliced) == _remembered(whole)
    assert (sliced.consumed, sliced.newest_received) == (whole.consumed, whole.newest_received)


def _remembered(out: BatchOutput) -> dict[bytes, tuple[object, object]]:
    """What the one-confirmation memory of ``out`` holds per identity (not when it noted it)."""
    assert out.memory is not None
    return {key: (latest, previous) for key, (latest, previous, _) in out.memory._entries.items()}
