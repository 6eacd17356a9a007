"""schemas/*.json: valid JSON Schemas, and everything the worker emits or accepts agrees with them."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import worker.events.schemas
from tests.unit.factories import FakeRecord, inbound_doc, inbound_json, where
from worker.classify.decide import classify, decide
from worker.classify.rules import BUILTIN_LAYER, Layer, Rule, RuleBook, compile_layers
from worker.constants import ALL_CHANNELS, SCHEMA_CHANGE, SCHEMA_DEAD_LETTER, SCHEMA_REPLY
from worker.errors import DeadLetterCode, InputError
from worker.events.inbound import decode
from worker.events.outgoing import encode_change, encode_dead_letter, encode_reply
from worker.events.schemas import CHANGE, DEAD_LETTER, IMPORT, INBOUND, REPLY, RULES
from worker.model import Action, InboundMessage, Intent, ScopeLevel, Source
from worker.stream.batch import BatchOutput, classify_records

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
NAMES = (RULES, INBOUND, CHANGE, REPLY, DEAD_LETTER, IMPORT)
EMITTED = "2026-11-24T12:00:00.000000Z"


def _load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads((SCHEMA_DIR / name).read_bytes())
    return schema


def _errors(name: str, instance: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in worker.events.schemas.validator(name).iter_errors(instance)
    )


def _assert_valid(name: str, raw: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(raw)
    assert _errors(name, doc) == [], doc
    return doc


@functools.cache
def _key_validator() -> Draft202012Validator:
    schema = _load(CHANGE)
    return Draft202012Validator({**schema["$defs"]["recordKey"], "$defs": schema["$defs"]})


def _key_errors(key: bytes) -> list[str]:
    return [e.message for e in _key_validator().iter_errors(orjson.loads(key))]


# --- the schemas themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://optout-worker.dev/schemas/{name}"
    assert schema["title"]
    assert len(schema["description"]) > 40


def _object_schemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield path or "(top)", node
        for key, child in node.items():
            yield from _object_schemas(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _object_schemas(child, f"{path}/{i}")


@pytest.mark.parametrize("name", [RULES, CHANGE, REPLY, DEAD_LETTER])
def test_our_formats_are_closed(name: str) -> None:
    objects = [
        (path, obj)
        for path, obj in _object_schemas(_load(name))
        if "type" in obj  # skip if/then fragments
    ]
    assert objects
    for path, obj in objects:
        assert obj.get("additionalProperties") is False, path


def test_inbound_is_open_to_producer_fields() -> None:
    schema = _load(INBOUND)
    assert schema["additionalProperties"] is True
    assert set(schema["required"]) == {
        "message_id",
        "channel",
        "from",
        "to",
        "account_id",
        "text",
        "received_at",
    }


@pytest.mark.parametrize(
    ("name", "const"), [(CHANGE, SCHEMA_CHANGE), (REPLY, SCHEMA_REPLY), (DEAD_LETTER, SCHEMA_DEAD_LETTER)]
)
def test_schema_field_is_the_constant(name: str, const: str) -> None:
    schema = _load(name)
    assert schema["properties"]["schema"] == {"const": const}
    assert "schema" in schema["required"]
    # Every field is required except those added compatibly after version 1 shipped.
    assert set(schema["required"]) == set(schema["properties"]) - _ADDED_IN_V1.get(name, set())


#: Fields added to a v1 event later: optional, so events from earlier producers stay valid.
_ADDED_IN_V1 = {
    CHANGE: {"language", "match", "category", "note"},
    REPLY: {"language", "match"},
    DEAD_LETTER: {"value"},
}


@pytest.mark.parametrize("name", [CHANGE, REPLY])
def test_added_fields_are_optional_for_earlier_producers(name: str) -> None:
    schema = _load(name)
    for field in ("language", "match"):
        assert field in schema["properties"]
        assert field not in schema["required"]


def test_enums_match_the_code() -> None:
    dead = _load(DEAD_LETTER)["properties"]["error"]["properties"]["code"]["enum"]
    assert dead == [code.value for code in DeadLetterCode]
    change = _load(CHANGE)
    assert change["properties"]["action"]["enum"] == [a.value for a in Action]
    assert change["$defs"]["scope"]["properties"]["level"]["enum"] == [level.value for level in ScopeLevel]
    reply = _load(REPLY)
    assert reply["properties"]["intent"]["enum"] == [i.value for i in Intent if i is not Intent.NONE]


@pytest.mark.parametrize("name", NAMES)
def test_the_worker_loads_these_files(name: str) -> None:
    # What the installed package serves is what is in schemas/ (no stale copy, no other file).
    assert worker.events.schemas.load(name) == _load(name)
    assert worker.events.schemas.validator(name).schema == _load(name)


# --- everything the classifier emits validates ----------------------------------------------------

_TOP = Layer(
    True,
    (
        Rule("leave", Intent.OPT_OUT, ("LEAVE",), level=ScopeLevel.SUBACCOUNT),
        Rule("leave_all", Intent.OPT_OUT, ("LEAVE ALL",), level=ScopeLevel.SUBACCOUNT, all_channels=True),
        Rule(
            "block_sender",
            Intent.OPT_OUT,
            ("BLOCK SENDER",),
            level=ScopeLevel.SENDER,
            reply="{keyword}: {sender} will not text you again ({account}).",
            has_reply_override=True,
        ),
        Rule(
            "quiet",
            Intent.OPT_OUT,
            ("QUIET",),
            level=ScopeLevel.SENDER,
            all_channels=True,
            has_reply_override=True,
        ),
        Rule("info", Intent.HELP, ("WHO",), reply="This is {account}.", has_reply_override=True),
    ),
    MappingProxyType({Intent.HELP: "Help for {account} via {sender}."}),
)
BOOK = RuleBook(compile_layers([BUILTIN_LAYER, _TOP]), (BUILTIN_LAYER, _TOP))

_TEXTS = [
    "STOP",
    "stop all",
    "Leave.",
    "leave all",
    "block sender",
    "QUIET",
    "start",
    "unstop",
    "HELP",
    "who",
    "hi",
]


def _good(text: str, n: int, sub: str | None, channel: str) -> bytes:
    doc = inbound_doc(
        text,
        message_id=f"m-{n}",
        channel=channel,
        address=f"+1555{n:07d}",
        sender="12345" if n % 2 else "ACME",
        account="acc",
        received_at=f"2026-11-24T10:{n % 60:02d}:00.25-03:00",
    )
    if sub is not None or n % 3:
        doc["subaccount_id"] = sub
    return orjson.dumps(doc)


def _inbound(**changes: Any) -> bytes:
    defaults = {"message_id": "m", "address": "+1", "sender": "1", "account": "a"}
    return inbound_json(**(defaults | {"received_at": "2026-11-24T10:00:00Z"} | changes))


_BAD: list[bytes | None] = [
    None,
    b"",
    b"\xc3\x28",
    b"{nope",
    b"[1]",
    b"12",
    b'{"text": "STOP"}',
    _inbound(text=5),
    _inbound(account_id=""),
    _inbound(text="😀" * 16385),
    _inbound(received_at="2026-11-24T10:00:00"),
    _inbound(received_at="soon"),
]


@pytest.fixture(scope="module")
def batch() -> BatchOutput:
    values: list[bytes | None] = []
    n = 0
    for sub in ("sub", None):
        for channel in ("sms", "whatsapp"):
            for text in _TEXTS:
                n += 1
                values.append(_good(text, n, sub, channel))
    values[5:5] = _BAD[:6]
    values += _BAD[6:]
    records = [
        FakeRecord("mo.inbound", 1, i, 1764000000000 + i, None if i % 4 else b"k", v)
        for i, v in enumerate(values)
    ]
    out = BatchOutput(emitted_at=EMITTED, worker_version="0.1.0")
    classify_records(where(records), records, BOOK, out)
    return out


def test_the_batch_is_varied(batch: BatchOutput) -> None:
    events = [orjson.loads(value) for _, value in batch.changes]
    assert {e["scope"]["level"] for e in events} == {level.value for level in ScopeLevel}
    assert {(e["scope"]["level"], e["scope"]["channel"] == ALL_CHANNELS) for e in events} == {
        (level.value, all_channels) for level in ScopeLevel for all_channels in (False, True)
    }
    assert {e["action"] for e in events} == {"block", "unblock"}
    assert {orjson.loads(v)["intent"] for _, v in batch.replies} == {"opt_out", "opt_in", "help"}
    projector_only = {DeadLetterCode.INVALID_CHANGE, DeadLetterCode.REFUSED_BY_DATABASE}
    assert set(batch.dead_by_code) == set(DeadLetterCode) - projector_only
    assert batch.intents[Intent.NONE] == 4


def test_every_change_validates_and_its_key_is_its_identity(batch: BatchOutput) -> None:
    assert batch.changes
    for key, value in batch.changes:
        event = _assert_valid(CHANGE, value)
        assert _key_errors(key) == []
        scope = event["scope"]
        assert orjson.loads(key) == [
            scope["level"],
            scope["account_id"],
            scope["subaccount_id"],
            scope["sender"],
            scope["channel"],
            event["address"],
            *([] if event["category"] == "all" else [event["category"]]),
        ]


def test_every_reply_validates(batch: BatchOutput) -> None:
    assert batch.replies
    for key, value in batch.replies:
        reply = _assert_valid(REPLY, value)
        assert key == reply["to"].encode()
        assert "{" not in reply["text"]


def test_every_dead_letter_validates(batch: BatchOutput) -> None:
    assert len(batch.dead_letters) == len(_BAD)
    for _, value in batch.dead_letters:
        _assert_valid(DEAD_LETTER, value)


def test_projector_dead_letter_validates() -> None:
    raw = encode_dead_letter(
        stage="projector",
        code=DeadLetterCode.INVALID_CHANGE,
        detail="not a valid change event: KeyError: 'scope'",
        topic="blocklist.changes",
        partition=0,
        offset=5,
        timestamp_ms=None,
        key=None,
        value=b"{}",
        failed_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        worker_version="0.1.0",
    )
    _assert_valid(DEAD_LETTER, raw)


# Identifiers as the decoder accepts them: no control characters (worker.events.fields).
_ids = st.text(
    st.characters(exclude_characters=[chr(c) for c in range(32)] + ["\x7f"], exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)


@settings(deadline=None)  # the first example builds the validator
@given(
    message=st.builds(
        InboundMessage,
        message_id=_ids,
        channel=_ids.filter(lambda c: c != ALL_CHANNELS),
        sender=_ids,
        address=_ids,
        account_id=_ids,
        subaccount_id=st.none() | _ids,
        text=st.just("x"),
        received_at=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 1, 1)).map(
            lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ),
    ),
    text=st.sampled_from(_TEXTS[:-1]),
    source=st.builds(Source, _ids, st.integers(0, 10_000), st.integers(0, 2**63 - 1), _ids),
)
def test_decisions_encode_to_valid_events(message: InboundMessage, text: str, source: Source) -> None:
    rules = BOOK.base
    match = classify(text, rules)
    assert match is not None
    decision = decide(message, match, rules, source)
    for key, event in decision.changes:
        _assert_valid(CHANGE, encode_change(event, EMITTED))
        assert _key_errors(key) == []
    if decision.reply is not None:
        _assert_valid(REPLY, encode_reply(decision.reply, EMITTED))


@settings(deadline=None)  # the first example builds the validator
@given(
    key=st.none() | st.binary(max_size=40),
    value=st.none() | st.binary(max_size=40),
    code=st.sampled_from(DeadLetterCode),
    timestamp_ms=st.none() | st.integers(-1, 2**62),
)
def test_dead_letters_validate(
    key: bytes | None, value: bytes | None, code: DeadLetterCode, timestamp_ms: int | None
) -> None:
    raw = encode_dead_letter(
        stage="classifier",
        code=code,
        detail="detail",
        topic="mo.inbound",
        partition=0,
        offset=0,
        timestamp_ms=timestamp_ms,
        key=key,
        value=value,
        failed_at=EMITTED,
        worker_version="0.1.0",
    )
    _assert_valid(DEAD_LETTER, raw)


def test_early_year_change_validates() -> None:
    raw = _inbound(received_at="0999-06-01T00:00:00Z")
    out = BatchOutput(emitted_at=EMITTED, worker_version="0.1.0")
    records = [FakeRecord("mo.inbound", 0, 0, 0, None, raw)]
    classify_records(where(records), records, BOOK, out)
    for _, value in out.changes:
        _assert_valid(CHANGE, value)


# --- the schemas reject what the code would never emit --------------------------------------------

_CHANGE_DOC: dict[str, Any] = {
    "schema": SCHEMA_CHANGE,
    "event_id": "0123456789abcdef0123456789abcdef",
    "action": "block",
    "scope": {
        "level": "account",
        "account_id": "acc",
        "subaccount_id": None,
        "sender": None,
        "channel": "sms",
    },
    "address": "+15550001111",
    "keyword": "STOP",
    "rule": "stop",
    "reason": "opt_out_keyword",
    "source": {"topic": "mo.inbound", "partition": 0, "offset": 1, "message_id": "m-1"},
    "occurred_at": "2026-11-24T10:00:00.000000Z",
    "emitted_at": EMITTED,
}


def _scope(level: str, sub: str | None, sender: str | None, **changes: str) -> dict[str, Any]:
    scope = {"level": level, "account_id": "a", "subaccount_id": sub, "sender": sender, "channel": "sms"}
    return {**scope, **changes}


def test_change_example_is_valid() -> None:
    assert _errors(CHANGE, _CHANGE_DOC) == []
    assert _errors(CHANGE, {**_CHANGE_DOC, "keyword": None, "rule": None, "action": "unblock"}) == []


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"scope": _scope("subaccount", None, None)}, "scope/subaccount_id"),
        ({"scope": _scope("sender", None, None)}, "scope/sender"),
        ({"scope": _scope("account", "s", None)}, "scope/subaccount_id"),
        ({"scope": _scope("account", None, "x")}, "scope/sender"),
        ({"scope": _scope("subaccount", "s", "x")}, "scope/sender"),
        ({"scope": _scope("sender", "s", "x", channel="*")}, "scope/subaccount_id"),
        ({"scope": _scope("account", None, None, account_id="")}, "scope/account_id"),
        ({"scope": _scope("account", None, None, channel="")}, "scope/channel"),
        ({"scope": _scope("sender", None, "")}, "scope/sender"),
        ({"scope": {k: v for k, v in _scope("account", None, None).items() if k != "sender"}}, "scope"),
        ({"event_id": "0123456789ABCDEF0123456789ABCDEF"}, "event_id"),
        ({"event_id": "abc"}, "event_id"),
        ({"action": "delete"}, "action"),
        ({"schema": "optout.blocklist-change.v2"}, "schema"),
        ({"occurred_at": "2026-11-24T10:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-11-24T11:00:00.000000+01:00"}, "occurred_at"),
        ({"emitted_at": "2026-11-24 10:00"}, "emitted_at"),
        ({"source": {"topic": "t", "partition": -1, "offset": 0, "message_id": "m"}}, "source/partition"),
        ({"extra": 1}, "(top)"),
    ],
)
def test_change_schema_rejects(changes: dict[str, Any], where: str) -> None:
    errors = _errors(CHANGE, {**_CHANGE_DOC, **changes})
    assert any(e.startswith(f"{where}: ") for e in errors), errors


def test_change_schema_requires_every_field() -> None:
    for name in _CHANGE_DOC:
        assert _errors(CHANGE, {k: v for k, v in _CHANGE_DOC.items() if k != name}), name


@pytest.mark.parametrize(
    "key",
    [
        b'["account","acc",null,null,"sms"]',
        b'["account","acc",null,null,"sms","+1","extra"]',
        b'["planet","acc",null,null,"sms","+1"]',
        b'{"level":"account"}',
    ],
)
def test_record_key_schema_rejects(key: bytes) -> None:
    assert _key_errors(key)


def test_reply_and_dead_letter_schemas_reject() -> None:
    match = classify("stop", BOOK.base)
    assert match is not None
    message = InboundMessage("m", "sms", "S", "+1", "a", None, "STOP", "2026-11-24T10:00:00.000000Z")
    decision = decide(message, match, BOOK.base, Source("t", 0, 0, "m"))
    assert decision.reply is not None
    reply = orjson.loads(encode_reply(decision.reply, EMITTED))
    assert _errors(REPLY, reply) == []
    assert _errors(REPLY, {**reply, "intent": "none"})
    assert _errors(REPLY, {**reply, "text": ""})
    assert _errors(REPLY, {**reply, "cc": "x"})
    dead = orjson.loads(
        encode_dead_letter(
            stage="classifier",
            code=DeadLetterCode.EMPTY_VALUE,
            detail="record value is empty",
            topic="t",
            partition=0,
            offset=0,
            timestamp_ms=0,
            key=None,
            value=b"",
            failed_at=EMITTED,
            worker_version="1",
        )
    )
    assert _errors(DEAD_LETTER, dead) == []
    assert _errors(DEAD_LETTER, {**dead, "error": {"code": "teapot", "detail": "x"}})
    assert _errors(DEAD_LETTER, {**dead, "error": {"code": "empty_value", "detail": ""}})
    assert _errors(DEAD_LETTER, {**dead, "value_b64": "not base64!"})
    assert _errors(DEAD_LETTER, {**dead, "stage": "sender"})


# --- inbound: the schema and decode() agree -------------------------------------------------------


def _decode_ok(doc: dict[str, Any]) -> None:
    decoded, received = decode(orjson.dumps(doc))
    assert decoded == doc
    assert received.tzinfo is not None


def test_schema_examples_are_valid_and_decode() -> None:
    schema = _load(INBOUND)
    for example in schema["examples"]:
        assert _errors(INBOUND, example) == []
        _decode_ok(example)
    for example in schema["properties"]["received_at"]["examples"]:
        doc = {**schema["examples"][0], "received_at": example}
        assert _errors(INBOUND, doc) == []
        _decode_ok(doc)


_known = {"message_id", "channel", "from", "to", "account_id", "subaccount_id", "text", "received_at"}
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _received_at(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
    separator = draw(st.sampled_from("Tt"))
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]))
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    if minutes == 0 and draw(st.booleans()):
        offset = "Z"
    else:
        offset = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{fraction}{offset}"


@st.composite
def _inbound_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "message_id": draw(_ids),
        "channel": draw(st.sampled_from(["sms", "whatsapp", "rcs"]) | _ids),
        "from": draw(st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z") | _ids),
        "to": draw(st.from_regex(r"\A[0-9]{5,6}\Z") | _ids),
        "account_id": draw(_ids),
        "text": draw(st.text(max_size=30)),
        "received_at": draw(_received_at()),
    }
    sub = draw(st.sampled_from(["absent", "null", "set"]))
    if sub != "absent":
        doc["subaccount_id"] = None if sub == "null" else draw(_ids)
    extra = draw(
        st.dictionaries(st.text(max_size=8).filter(lambda k: k not in _known), _json_values, max_size=3)
    )
    return {**extra, **doc}


@settings(deadline=None)  # the first example builds the validator
@given(_inbound_docs())
def test_valid_inbound_messages_validate_and_decode(doc: dict[str, Any]) -> None:
    assert _errors(INBOUND, doc) == []
    _decode_ok(doc)


def test_leap_day_and_offsets_decode_to_the_same_instant() -> None:
    docs = [
        {**_load(INBOUND)["examples"][0], "received_at": at}
        for at in ("2028-02-29T23:30:00-01:00", "2028-03-01T00:30:00Z", "2028-03-01t05:30:00+05:00")
    ]
    instants = set()
    for doc in docs:
        assert _errors(INBOUND, doc) == []
        instants.add(decode(orjson.dumps(doc))[1])
    assert instants == {datetime(2028, 3, 1, 0, 30, tzinfo=timezone(timedelta(0)))}


_EXAMPLE: dict[str, Any] = {
    "message_id": "m-1",
    "channel": "sms",
    "from": "+15550001111",
    "to": "12345",
    "account_id": "acc",
    "subaccount_id": "sub",
    "text": "STOP",
    "received_at": "2026-11-24T10:00:00Z",
}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"message_id": ""}, DeadLetterCode.INVALID_FIELD),
        ({"channel": None}, DeadLetterCode.INVALID_FIELD),
        ({"from": ""}, DeadLetterCode.INVALID_FIELD),
        ({"to": 12345}, DeadLetterCode.INVALID_FIELD),
        ({"account_id": ""}, DeadLetterCode.INVALID_FIELD),
        ({"subaccount_id": ""}, DeadLetterCode.INVALID_FIELD),
        ({"subaccount_id": 7}, DeadLetterCode.INVALID_FIELD),
        ({"text": 5}, DeadLetterCode.INVALID_FIELD),
        ({"text": None}, DeadLetterCode.INVALID_FIELD),
        ({"text": "a" * 65537}, DeadLetterCode.TEXT_TOO_LARGE),
        ({"received_at": "2026-11-24T10:00:00"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"received_at": "2026-11-24"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"received_at": "next tuesday"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"received_at": "2026-06-30T23:59:60Z"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"received_at": "2026-11-24T24:00:00Z"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"received_at": 1764000000}, DeadLetterCode.INVALID_FIELD),
    ],
)
def test_what_decode_rejects_the_schema_rejects(changes: dict[str, Any], code: DeadLetterCode) -> None:
    doc = {**_EXAMPLE, **changes}
    with pytest.raises(InputError) as info:
        decode(orjson.dumps(doc))
    assert info.value.code is code
    assert _errors(INBOUND, doc)


@pytest.mark.parametrize("name", ["message_id", "channel", "from", "to", "account_id", "text", "received_at"])
def test_missing_field_is_rejected_by_both(name: str) -> None:
    doc = {k: v for k, v in _EXAMPLE.items() if k != name}
    with pytest.raises(InputError) as info:
        decode(orjson.dumps(doc))
    assert info.value.code is DeadLetterCode.MISSING_FIELD
    assert _errors(INBOUND, doc) == [f"(top): {name!r} is a required property"]


@pytest.mark.parametrize("doc", [[1, 2], 42, "STOP", None])
def test_non_objects_are_rejected_by_both(doc: Any) -> None:
    with pytest.raises(InputError) as info:
        decode(orjson.dumps(doc))
    assert info.value.code is DeadLetterCode.NOT_AN_OBJECT
    assert _errors(INBOUND, doc)
