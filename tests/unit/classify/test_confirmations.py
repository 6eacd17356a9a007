"""One confirmation per opt-out: the rule (worker.classify.confirmations) and the batch step using it."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.factories import FakeRecord, inbound_json, where
from worker.classify.confirmations import (
    Known,
    RecentChanges,
    change_facts,
    decide_repeat,
    known_change,
    layout_facts,
    own_change,
)
from worker.classify.rules import default_rulebook
from worker.events.outgoing import CHANGE_HEAD
from worker.model import Intent
from worker.stream.batch import BatchOutput, classify_records

KEY = b'["account","acme",null,null,"sms","+15550000001"]'
SECOND = 1000
"""Test times are milliseconds after 2026-11-24T12:00:00Z."""
MINUTE = 60_000_000
"""A window of one minute, in µs."""


def at(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"2026-11-24T12:{seconds // 60:02d}:{seconds % 60:02d}.{millis:03d}000Z"


def block(ms: int, eid: str = "a", mo: bool = True) -> Known:
    return (at(ms), 1, eid, mo)


def unblock(ms: int, eid: str = "u") -> Known:
    return (at(ms), 0, eid, False)


def event(change: Known) -> bytes:
    """The change as an encoded event (what the tail reads)."""
    source = {"topic": "in", "partition": 0, "offset": 1, "message_id": "m"} if change[3] else None
    action = "block" if change[1] else "unblock"
    return orjson.dumps({"event_id": change[2], "action": action, "occurred_at": change[0], "source": source})


# -- the rule ------------------------------------------------------------------------------------


def test_nothing_known_is_confirmed() -> None:
    assert not decide_repeat(block(0, "own"), [], MINUTE)


def test_a_recent_block_by_a_subscriber_is_not_confirmed_again() -> None:
    assert decide_repeat(block(59 * SECOND, "own"), [block(0)], MINUTE)
    assert decide_repeat(block(60 * SECOND, "own"), [block(0)], MINUTE)  # the window's end included


def test_after_the_window_a_stop_is_confirmed_again() -> None:
    assert not decide_repeat(block(61 * SECOND, "own"), [block(0)], MINUTE)


def test_a_lifted_block_is_confirmed_again() -> None:
    assert not decide_repeat(block(2 * SECOND, "own"), [block(0), unblock(SECOND)], MINUTE)


def test_a_manual_block_was_never_confirmed_so_the_subscribers_stop_is() -> None:
    assert not decide_repeat(block(SECOND, "own"), [block(0, mo=False)], MINUTE)


def test_reprocessing_skips_the_messages_own_event_and_looks_at_the_one_before() -> None:
    mine = block(SECOND, "own")
    assert not decide_repeat(mine, [mine], MINUTE)  # the first STOP: confirmed again, same reply id
    assert decide_repeat(mine, [mine, block(0, "first")], MINUTE)  # a second STOP: still not confirmed


def test_a_late_stop_after_a_newer_change_is_not_confirmed() -> None:
    assert decide_repeat(block(0, "own"), [unblock(5 * SECOND)], MINUTE)  # the START came first
    assert decide_repeat(block(0, "own"), [block(5 * SECOND)], MINUTE)  # a later STOP came first


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans(), st.sampled_from("abc")), max_size=8))
def test_the_decision_does_not_depend_on_arrival_order(events: list[tuple[int, bool, str]]) -> None:
    """Tail and batch may learn of the same changes in any order: the answer is the same."""
    changes = [(at(ms * SECOND), int(blocked), eid, blocked) for ms, blocked, eid in events]
    mine = block(50 * SECOND, "own")
    assert decide_repeat(mine, changes, 30 * 1_000_000) == decide_repeat(mine, changes[::-1], 30 * 1_000_000)


# -- what the classifier remembers -----------------------------------------------------------------


def _noted(recent: RecentChanges, key: bytes) -> tuple[Known | None, Known | None]:
    """The facts the memory keeps of ``key``'s last two changes (kept as facts or as read)."""
    latest, previous, _ = recent._entries[key]
    return recent._known(latest), None if previous is None else recent._known(previous)


def test_recent_changes_answers_from_the_last_two_events_of_a_key_and_the_batchs_own() -> None:
    recent = RecentChanges(60)
    assert KEY not in recent
    recent.apply_record(KEY, event(block(0)), 1)
    assert KEY in recent
    assert recent.repeated(KEY, event(block(SECOND, "own")))
    recent.apply_record(KEY, event(unblock(SECOND // 2)), 2)
    assert not recent.repeated(KEY, event(block(SECOND, "own")))
    assert not recent.confirm([(KEY, event(block(SECOND * 3 // 4, "p")))], 0, [], 0, True)  # blocked since
    assert recent.repeated(KEY, event(block(SECOND, "own")))
    assert KEY.replace(b'"sms"', b'"*"') not in recent


def test_the_batch_steps_check_drops_a_repeated_opt_outs_reply_and_notes_every_new_block() -> None:
    recent = RecentChanges(60)
    recent.apply_record(KEY, event(block(0, "first")), 1)  # a subscriber's block, a second ago
    other = KEY.replace(b"+15550000001", b"+15550000002")
    fresh = (other, event(block(SECOND, "fresh")))
    changes, replies = [fresh], [(b"+15550000002", b"reply")]
    assert not recent.confirm(changes, 0, replies, 0, True)  # nothing known: confirmed
    assert replies == [(b"+15550000002", b"reply")]
    assert _noted(recent, other) == (block(SECOND, "fresh"), None)
    again = (KEY, event(block(SECOND, "again")))
    changes.append(again)
    replies.append((b"+15550000001", b"reply"))
    assert recent.confirm(changes, 1, replies, 1, True)  # repeats the block: not confirmed
    assert replies == [(b"+15550000002", b"reply")]
    assert _noted(recent, KEY) == (block(SECOND, "again"), block(0, "first"))  # the records after it see it
    later = (other, event(block(2 * SECOND, "later")))
    changes.append(later)
    replies.append((b"+15550000002", b"reply 2"))
    assert recent.confirm(changes, 2, replies, 1, True)  # repeats the batch's own block
    assert _noted(recent, other) == (block(2 * SECOND, "later"), block(SECOND, "fresh"))


def test_the_batch_steps_check_notes_an_opt_ins_unblocks_of_known_identities_only() -> None:
    recent = RecentChanges(60)
    recent.apply_record(KEY, event(block(0)), 1)
    never = KEY.replace(b'"sms"', b'"*"')
    lifted = [(KEY, event(unblock(SECOND))), (never, event(unblock(SECOND, "u2")))]
    replies = [(b"+15550000001", b"welcome back")]
    assert not recent.confirm(lifted, 0, replies, 0, False)  # an opt-in is always confirmed
    assert replies == [(b"+15550000001", b"welcome back")]
    assert _noted(recent, KEY) == (unblock(SECOND), block(0))
    assert never not in recent


def test_a_record_read_twice_is_kept_once() -> None:
    recent = RecentChanges(60)
    recent.apply_record(KEY, event(block(0, "first")), 1)
    recent.apply_record(KEY, event(block(SECOND, "own")), 2)
    recent.apply_record(KEY, event(block(SECOND, "own")), 3)  # the tail's copy of the batch's own event
    assert recent.repeated(KEY, event(block(SECOND, "own")))  # "first" is still the one before


def test_the_tails_late_copies_of_noted_events_leave_the_memory_as_it_was() -> None:
    """A batch's own events are noted before the tail reads them back: a late copy of the older
    one must not push the newer into second place (a third change would then forget it)."""
    recent = RecentChanges(60)
    older, newer = event(block(0, "first")), event(block(SECOND, "second"))
    recent.confirm([(KEY, older)], 0, [], 0, True)
    recent.confirm([(KEY, newer)], 0, [], 0, True)
    before = dict(recent._entries)
    recent.apply_record(KEY, older, 2)  # the tail catches up: first its copy of the older event
    recent.apply_record(KEY, newer, 3)
    assert recent._entries == before
    assert recent._entries[KEY][:2] == (known_change(newer), known_change(older))  # kept as facts


def test_malformed_records_and_tombstones_are_ignored() -> None:
    recent = RecentChanges(60)
    recent.apply_record(KEY, b"{", 1)
    recent.apply_record(None, event(block(0)), 1)
    recent.apply_record(KEY, None, 1)
    assert not recent.repeated(KEY, event(block(SECOND, "own")))
    assert not recent.repeated(KEY, b"not an event")


def test_pruning_forgets_identities_written_more_than_two_windows_before_the_newest() -> None:
    recent = RecentChanges(10)
    recent.apply_record(b"old", event(block(0)), 0)
    recent.apply_record(b"mid", event(block(0)), 15_000)
    recent.apply_record(b"new", event(block(0)), 25_000)
    recent.prune()
    assert [key in recent for key in (b"old", b"mid", b"new")] == [False, True, True]


def test_known_change_reads_what_the_rule_needs_and_refuses_the_rest() -> None:
    doc = {"action": "block", "occurred_at": at(0), "event_id": "abc", "source": {}}
    assert known_change(orjson.dumps(doc)) == (at(0), 1, "abc", True)
    assert known_change(orjson.dumps(doc | {"source": None})) == (at(0), 1, "abc", False)
    assert known_change(orjson.dumps(doc | {"action": "unblock"})) == (at(0), 0, "abc", False)
    for bad in (
        None,
        b"",
        b"{",
        b"[]",
        orjson.dumps(doc | {"action": "x"}),
        orjson.dumps(doc | {"occurred_at": 5}),
    ):
        assert known_change(bad) is None


# -- the facts of the classifier's own events, read at fixed positions ---------------------------


def _own_event(**changes: object) -> bytes:
    """A change event as the batch step encodes it, with ``changes`` made to its document (in place:
    the key order, so the layout, stays)."""
    out = _batch(_records(("STOP", "2026-11-24T12:00:00Z")), None)
    value = out.changes[0][1]
    return orjson.dumps(orjson.loads(value) | changes) if changes else value


@pytest.mark.parametrize("read", [layout_facts, change_facts], ids=["python", "c"])
def test_the_facts_of_an_own_event_are_read_where_the_encoder_put_them(
    read: Callable[[bytes, bytes], Known | None],  # the C twin is layout_facts when it was not built
) -> None:
    for value, expected in (
        (_own_event(), True),
        (_own_event(source=None), False),  # an operator's block: not one a confirmation answered
    ):
        got = read(value, CHANGE_HEAD)
        assert got == known_change(value)
        assert got is not None
        assert (got[1], got[3]) == (1, expected)
    unblocked = _own_event(action="unblock")
    got = read(unblocked, CHANGE_HEAD)
    assert got == known_change(unblocked)
    assert got is not None
    assert got[1:] == (0, orjson.loads(unblocked)["event_id"], False)
    for other in (
        _own_event(emitted_at="2026-11-24T12:00:00Z"),  # a time not canonical
        _own_event(event_id='a"b' + "c" * 29),  # an id with an escape
        _own_event(action="hold"),
        orjson.dumps(orjson.loads(_own_event()) | {"extra": 1}),  # not last: the times
        b"{}",
    ):
        assert read(other, CHANGE_HEAD) is None
        assert own_change(other) == known_change(other)  # parsed instead


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_the_c_and_python_layout_readers_agree_on_damaged_events(position: int, byte: int) -> None:
    value = bytearray(_OWN_EVENT)
    value[position % len(value)] = byte
    assert change_facts(bytes(value), CHANGE_HEAD) == layout_facts(bytes(value), CHANGE_HEAD)


# -- the batch step ------------------------------------------------------------------------------


def _records(*texts_and_times: tuple[str, str], address: str = "+15550000001") -> list[FakeRecord]:
    return [
        FakeRecord(
            "in", 0, i, 0, None, inbound_json(text, message_id=f"m{i}", address=address, received_at=at)
        )
        for i, (text, at) in enumerate(texts_and_times)
    ]


def _batch(records: list[FakeRecord], recent: RecentChanges | None) -> BatchOutput:
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="t", memory=recent)
    classify_records(where(records), records, default_rulebook(), out)
    return out


def _replied(out: BatchOutput) -> list[str]:
    return [orjson.loads(v)["in_reply_to"] for _, v in out.replies]


def test_two_stops_in_one_batch_one_reply_two_changes() -> None:
    out = _batch(
        _records(("STOP", "2026-11-24T12:00:00Z"), ("stop", "2026-11-24T12:00:05Z")), RecentChanges(60)
    )
    assert _replied(out) == ["m0"]
    assert len(out.changes) == 2
    assert out.suppressed == {Intent.OPT_OUT: 1}


def test_without_a_window_every_stop_is_confirmed() -> None:
    out = _batch(_records(("STOP", "2026-11-24T12:00:00Z"), ("stop", "2026-11-24T12:00:05Z")), None)
    assert _replied(out) == ["m0", "m1"]
    assert out.suppressed == {}


def test_stop_start_stop_in_one_batch_confirms_each() -> None:
    out = _batch(
        _records(
            ("STOP", "2026-11-24T12:00:00Z"),
            ("START", "2026-11-24T12:00:01Z"),
            ("STOP", "2026-11-24T12:00:02Z"),
        ),
        RecentChanges(60),
    )
    assert _replied(out) == ["m0", "m1", "m2"]


def test_a_start_of_an_address_that_is_not_blocked_is_confirmed_and_help_always() -> None:
    out = _batch(
        _records(("START", "2026-11-24T12:00:00Z"), ("HELP", "2026-11-24T12:00:01Z")), RecentChanges(60)
    )
    assert _replied(out) == ["m0", "m1"]


def test_a_stop_after_the_window_is_confirmed_again() -> None:
    out = _batch(
        _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:05Z")), RecentChanges(2)
    )
    assert _replied(out) == ["m0", "m1"]


def test_the_next_batch_sees_the_blocks_of_the_batch_before() -> None:
    recent = RecentChanges(60)
    first = _batch(_records(("STOP", "2026-11-24T12:00:00Z")), recent)
    assert _replied(first) == ["m0"]
    second = _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:09Z"))[1:]
    assert _replied(_batch(second, recent)) == []
    assert _replied(_batch(second, RecentChanges(60))) == ["m1"]  # without the first batch: confirmed


def test_reprocessing_a_batch_whose_output_the_tail_saw_gives_no_new_reply() -> None:
    """At-least-once: a crash after the output was acknowledged, before the commit."""
    records = _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:05Z"))
    recent = RecentChanges(60)
    first = _batch(records, recent)
    for key, value in first.changes:  # what the tail reads back from the change topic
        recent.apply_record(key, value, 0)
    again = _batch(records, recent)
    assert _replied(first) == ["m0"]
    assert set(_replied(again)) <= set(_replied(first))  # never a second, different reply
    assert [v for _, v in again.changes] == [v for _, v in first.changes]


def test_the_batchs_own_changes_are_noted_as_the_tail_reads_them_back() -> None:
    """A STOP's block always; a START's unblocks only of identities already known (a block to lift)."""
    records = _records(("STOP", "2026-11-24T12:00:00Z"), ("START", "2026-11-24T12:00:01Z"))
    out = _batch(records, RecentChanges(60))
    assert len(out.changes) == 9  # one block; four scopes x two categories lifted
    block_key, block_value = out.changes[0]
    [unblock_value] = [value for key, value in out.changes[1:] if key == block_key]
    assert out.memory is not None
    assert _noted(out.memory, block_key) == (known_change(unblock_value), known_change(block_value))


def test_a_providers_repeated_opt_out_signal_is_confirmed_once() -> None:
    """A document with ``intent`` (a provider's own signal) takes the same rule."""
    records = [
        FakeRecord(
            "in", 0, i, 0, None, inbound_json("Stop", message_id=f"m{i}", intent="opt_out", received_at=at)
        )
        for i, at in enumerate(("2026-11-24T12:00:00Z", "2026-11-24T12:00:07Z"))
    ]
    out = _batch(records, RecentChanges(60))
    assert len(out.changes) == 2
    assert _replied(out) == ["m0"]


def test_each_stored_event_is_parsed_once_however_often_its_subscriber_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscriber repeating STOP asks about the same stored events each time: parsed once, and
    the answers stay the rule's."""
    from worker.classify import confirmations

    parsed: list[bytes] = []

    def counting(value: bytes | None) -> Known | None:
        assert value is not None
        parsed.append(value)
        return known_change(value)

    monkeypatch.setattr(confirmations, "known_change", counting)
    recent = RecentChanges(window_seconds=60)
    first = event(block(0, "first"))
    recent.apply_record(KEY, first, 0)
    repeats = [event(block(n * SECOND, f"again-{n}")) for n in range(1, 6)]
    assert all(recent.repeated(KEY, own) for own in repeats)
    assert parsed.count(first) == 1
    assert sorted(parsed) == sorted([first, *repeats])
    late = event(block(90 * SECOND, "late"))
    assert not recent.repeated(KEY, late)  # after the window: confirmed again, cache or not


def test_the_parsed_events_are_few_and_forgotten_at_a_prune(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.classify import confirmations

    monkeypatch.setattr(confirmations, "_PARSED_MAX", 3)
    recent = RecentChanges(window_seconds=60)
    recent.apply_record(KEY, event(block(0, "stored")), 0)
    for n in range(1, 20):
        recent.repeated(KEY, event(block(n, f"own-{n}")))
        assert len(recent._parsed) <= 3
    recent.prune()
    assert len(recent._parsed) == 0


KEYS = st.sampled_from([b"k1", b"k2", b"k3", b"k4"])
EVENTS = st.sampled_from([event(block(n, f"e{n}")) for n in range(5)])


@given(
    stored=st.lists(st.tuples(KEYS, EVENTS), max_size=6), noted=st.lists(st.tuples(KEYS, EVENTS), max_size=6)
)
def test_noting_a_batchs_opt_outs_is_applying_their_events_one_by_one(
    stored: list[tuple[bytes, bytes]], noted: list[tuple[bytes, bytes]]
) -> None:
    confirmed, applied = RecentChanges(window_seconds=60), RecentChanges(window_seconds=60)
    for key, value in stored:
        confirmed.apply_record(key, value, 1)
        applied.apply_record(key, value, 1)
    for key, value in noted:
        confirmed.confirm([(key, value)], 0, [], 0, True)
        applied.apply_record(key, value, 2)
    assert _facts(confirmed) == _facts(applied)  # noted: kept as facts; applied: as the bytes read


def _facts(recent: RecentChanges) -> dict[bytes, tuple[Known | None, Known | None]]:
    return {key: _noted(recent, key) for key in recent._entries}


_OWN_EVENT = _own_event()
