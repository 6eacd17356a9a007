"""worker.events.outgoing: derived ids, encoding of emitted events, decoding of change events."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.constants import SCHEMA_CHANGE, SCHEMA_DEAD_LETTER, SCHEMA_REPLY
from worker.errors import DeadLetterCode, InputError
from worker.events.outgoing import (
    change_event_id,
    decode_change,
    derive_id,
    encode_change,
    encode_dead_letter,
    encode_reply,
    reply_id,
)
from worker.model import (
    Action,
    Category,
    ChangeEvent,
    Intent,
    MatchMode,
    ReplyRequest,
    Scope,
    ScopeLevel,
    Source,
)

EMITTED = "2026-11-24T10:00:01.000000Z"
SOURCE = Source("mo.inbound", 3, 42, "m-1")
EVENT = ChangeEvent(
    event_id="0123456789abcdef0123456789abcdef",
    action=Action.BLOCK,
    scope=Scope(ScopeLevel.SUBACCOUNT, "acc", "sub", None, "sms"),
    address="+15550001111",
    keyword="STOP",
    rule="stop",
    reason="opt_out_keyword",
    source=SOURCE,
    occurred_at="2026-11-24T10:00:00.000000Z",
    language="fr",
    match=MatchMode.LEADING,
)
REPLY = ReplyRequest(
    reply_id="fedcba9876543210fedcba9876543210",
    intent=Intent.OPT_OUT,
    account_id="acc",
    subaccount_id=None,
    channel="sms",
    to="+15550001111",
    sender="12345",
    text="Bye.",
    keyword="STOP",
    rule="stop",
    source=SOURCE,
    occurred_at="2026-11-24T10:00:00.000000Z",
    language="fr",
    match=MatchMode.PHRASE,
)


# --- ids ------------------------------------------------------------------------------------------


def test_derive_id_is_stable_128_bit_hex() -> None:
    one = derive_id("a", "b")
    assert one == derive_id("a", "b")
    assert len(one) == 32
    assert one == one.lower()
    int(one, 16)


@given(
    st.lists(st.text(max_size=5), min_size=1, max_size=4),
    st.lists(st.text(max_size=5), min_size=1, max_size=4),
)
def test_derive_id_parts_cannot_run_together(one: list[str], two: list[str]) -> None:
    if one != two and "\x1f" not in "".join(one + two):
        assert derive_id(*one) != derive_id(*two)


def test_change_and_reply_ids_depend_on_every_input() -> None:
    key = b'["account","acc",null,null,"sms","+1"]'
    base = change_event_id("acc", "m-1", key)
    assert base == change_event_id("acc", "m-1", key)
    others = {
        change_event_id("acc2", "m-1", key),
        change_event_id("acc", "m-2", key),
        change_event_id("acc", "m-1", b'["account","acc",null,null,"*","+1"]'),
        reply_id("acc", "m-1"),
    }
    assert base not in others
    assert len(others) == 4
    assert reply_id("acc", "m-1") == reply_id("acc", "m-1") != reply_id("acc", "m-2")


# --- change events --------------------------------------------------------------------------------


def test_encode_change() -> None:
    assert orjson.loads(encode_change(EVENT, EMITTED)) == {
        "schema": SCHEMA_CHANGE,
        "event_id": EVENT.event_id,
        "action": "block",
        "scope": {
            "level": "subaccount",
            "account_id": "acc",
            "subaccount_id": "sub",
            "sender": None,
            "channel": "sms",
        },
        "address": "+15550001111",
        "keyword": "STOP",
        "rule": "stop",
        "reason": "opt_out_keyword",
        "language": "fr",
        "match": "leading",
        "category": "all",
        "source": {"topic": "mo.inbound", "partition": 3, "offset": 42, "message_id": "m-1"},
        "occurred_at": "2026-11-24T10:00:00.000000Z",
        "emitted_at": EMITTED,
    }


def test_a_manual_change_has_no_source_and_keeps_its_note_and_category() -> None:
    manual = dataclasses.replace(
        EVENT, source=None, reason="manual", note="called support", category=Category.MARKETING
    )
    doc = orjson.loads(encode_change(manual, EMITTED))
    assert (doc["source"], doc["note"], doc["category"]) == (None, "called support", "marketing")
    assert decode_change(encode_change(manual, EMITTED)) == manual


def test_a_change_without_category_from_an_older_producer_is_a_full_block() -> None:
    doc = orjson.loads(encode_change(EVENT, EMITTED))
    del doc["category"]
    assert decode_change(orjson.dumps(doc)).category is Category.ALL


# Identifiers as the decoder accepts them: no control characters (worker.events.fields).
_names = st.text(
    st.characters(exclude_characters=[chr(c) for c in range(32)] + ["\x7f"], exclude_categories=["Cs"]),
    min_size=1,
    max_size=8,
)
_events = st.builds(
    ChangeEvent,
    event_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    action=st.sampled_from(Action),
    scope=st.builds(
        Scope,
        st.sampled_from(ScopeLevel),
        _names,
        st.none() | _names,
        st.none() | _names,
        st.sampled_from(["sms", "*"]),
    ),
    address=_names,
    keyword=st.none() | _names,
    rule=st.none() | _names,
    reason=_names,
    source=st.builds(Source, _names, st.integers(0, 1000), st.integers(0, 2**62), _names),
    occurred_at=st.just("2026-11-24T10:00:00.000000Z"),
    language=st.none() | st.sampled_from(["en", "fr", "pl"]),
    match=st.none() | st.sampled_from(MatchMode),
)


@given(_events)
def test_change_round_trip(event: ChangeEvent) -> None:
    assert decode_change(encode_change(event, EMITTED)) == event


def _mutated(**changes: Any) -> bytes:
    doc = orjson.loads(encode_change(EVENT, EMITTED))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = doc
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return orjson.dumps(doc)


_DELETE = object()


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        b"\xff",
        b"[]",
        b"null",
        b'"event"',
        _mutated(scope=_DELETE),
        _mutated(source=_DELETE),
        _mutated(event_id=_DELETE),
        _mutated(event_id=7),
        _mutated(action="delete"),
        _mutated(scope__level="planet"),
        _mutated(scope__account_id=None),
        _mutated(scope__sender=5),
        _mutated(scope="account"),
        _mutated(address=["+1"]),
        _mutated(keyword=1),
        _mutated(source__partition="three"),
        _mutated(source__offset=None),
        _mutated(occurred_at=_DELETE),
        _mutated(category="promotional"),
        _mutated(note=7),
        _mutated(note="x" * 1001),
        _mutated(note="nul\x00"),
    ],
)
def test_decode_change_rejects(raw: bytes | None) -> None:
    with pytest.raises(InputError) as info:
        decode_change(raw)
    assert info.value.code is DeadLetterCode.INVALID_CHANGE
    assert info.value.detail.startswith("not a valid change event: ")


@pytest.mark.parametrize("value", ["yesterday", "2026-11-24T12:00:00", "0001-01-01T00:00:00+01:00"])
def test_decode_change_dead_letters_a_bad_occurred_at(value: str) -> None:
    """Caught at decode, so the projector dead-letters the event instead of failing its batch."""
    with pytest.raises(InputError) as info:
        decode_change(_mutated(occurred_at=value))
    assert info.value.code is DeadLetterCode.INVALID_TIMESTAMP


def test_decode_change_canonicalizes_occurred_at() -> None:
    event = decode_change(_mutated(occurred_at="2026-11-24T13:00:00+01:00"))
    assert event.occurred_at == "2026-11-24T12:00:00.000000Z"


def test_decode_change_tolerates_missing_optional_fields() -> None:
    event = decode_change(_mutated(keyword=_DELETE, rule=_DELETE, scope__sender=_DELETE))
    assert event.keyword is None
    assert event.rule is None
    assert event.scope.sender is None


def test_decode_change_of_an_earlier_producer_without_language_and_match() -> None:
    event = decode_change(_mutated(language=_DELETE, match=_DELETE))
    assert event.language is None
    assert event.match is None
    assert event.keyword == "STOP"


# --- replies and dead letters ---------------------------------------------------------------------


def test_encode_reply() -> None:
    assert orjson.loads(encode_reply(REPLY, EMITTED)) == {
        "schema": SCHEMA_REPLY,
        "reply_id": REPLY.reply_id,
        "intent": "opt_out",
        "account_id": "acc",
        "subaccount_id": None,
        "channel": "sms",
        "to": "+15550001111",
        "from": "12345",
        "text": "Bye.",
        "keyword": "STOP",
        "rule": "stop",
        "language": "fr",
        "match": "phrase",
        "in_reply_to": "m-1",
        "source": {"topic": "mo.inbound", "partition": 3, "offset": 42, "message_id": "m-1"},
        "occurred_at": "2026-11-24T10:00:00.000000Z",
        "emitted_at": EMITTED,
    }


def _dead_letter(
    key: bytes | None, value: bytes | None, timestamp_ms: int | None = 1764000000000
) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(
        encode_dead_letter(
            stage="classifier",
            code=DeadLetterCode.INVALID_UTF8,
            detail="value is not valid UTF-8 at byte 0: invalid start byte",
            topic="mo.inbound",
            partition=1,
            offset=99,
            timestamp_ms=timestamp_ms,
            key=key,
            value=value,
            failed_at=EMITTED,
            worker_version="0.1.0",
        )
    )
    return doc


def test_encode_dead_letter() -> None:
    assert _dead_letter(b"k\x00", b"\xff\xfe") == {
        "schema": SCHEMA_DEAD_LETTER,
        "stage": "classifier",
        "error": {"code": "invalid_utf8", "detail": "value is not valid UTF-8 at byte 0: invalid start byte"},
        "source": {
            "topic": "mo.inbound",
            "partition": 1,
            "offset": 99,
            "timestamp_ms": 1764000000000,
            "key_b64": base64.b64encode(b"k\x00").decode(),
        },
        "value_b64": "//4=",
        "failed_at": EMITTED,
        "worker_version": "0.1.0",
    }


def test_dead_letter_without_key_value_or_timestamp() -> None:
    doc = _dead_letter(None, None, None)
    assert doc["source"]["key_b64"] is None
    assert doc["source"]["timestamp_ms"] is None
    assert doc["value_b64"] is None
    assert _dead_letter(b"", b"")["value_b64"] == ""


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_dead_letter_keeps_the_exact_bytes(key: bytes, value: bytes) -> None:
    doc = _dead_letter(key, value)
    assert base64.b64decode(doc["source"]["key_b64"], validate=True) == key
    assert base64.b64decode(doc["value_b64"], validate=True) == value
