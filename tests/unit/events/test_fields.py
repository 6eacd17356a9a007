"""Limits decided once at the boundary: identifiers, timestamps, change events, dead letters."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.helpers import change
from worker.constants import MAX_DEAD_LETTER_KEY_BYTES, MAX_DEAD_LETTER_VALUE_BYTES, MAX_FIELD_BYTES
from worker.errors import DeadLetterCode, InputError
from worker.events import schemas
from worker.events.fields import all_storable, field_problem
from worker.events.inbound import decode, parse_instant
from worker.events.outgoing import dead_letter_key, decode_change, encode_change, encode_dead_letter

_DOC = {
    "message_id": "m1",
    "channel": "sms",
    "from": "+15550000001",
    "to": "12345",
    "account_id": "acme",
    "text": "STOP",
    "received_at": "2026-11-24T10:00:00Z",
}


@given(st.lists(st.text(max_size=80) | st.text("ab\x00\x1f\x7f ", max_size=90), min_size=1, max_size=6))
def test_the_fast_check_never_passes_a_field_the_slow_check_refuses(fields: list[str]) -> None:
    if all_storable("".join(fields)):
        assert all(field_problem(field) is None for field in fields)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("+1555\x000001", "U+0000 at position 5"),
        ("a\nb", "U+000A"),
        ("del\x7f", "U+007F"),
        ("é" * 129, "258 bytes of UTF-8, the limit is 256"),
        ("🙂" * 65, "260 bytes"),
    ],
)
def test_field_problems_name_the_cause(value: str, problem: str) -> None:
    found = field_problem(value)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    "value", ["+15550000001", "whatsapp:+447700900123", "🙂" * 64, "x" * MAX_FIELD_BYTES, "é\u0085"]
)
def test_valid_identifiers_pass(value: str) -> None:
    assert field_problem(value) is None


@pytest.mark.parametrize("name", ["message_id", "channel", "from", "to", "account_id", "subaccount_id"])
@pytest.mark.parametrize("bad", ["a\x00b", "x" * (MAX_FIELD_BYTES + 1), "tab\there"])
def test_every_identifier_is_checked_at_decode(name: str, bad: str) -> None:
    with pytest.raises(InputError) as caught:
        decode(orjson.dumps(_DOC | {name: bad}))
    assert caught.value.code is DeadLetterCode.INVALID_FIELD
    assert repr(name) in caught.value.detail


def test_text_may_hold_anything_that_is_valid_json() -> None:
    """The text is classified, never stored as a column: a NUL there is no reason to refuse an MO."""
    doc, _ = decode(orjson.dumps(_DOC | {"text": "STOP\x00\n\t"}))
    assert doc["text"] == "STOP\x00\n\t"


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-22T10:00:00Z",
        "2026-11-22t10:00:00z",
        "2026-11-22T10:00:00.5+01:00",
        "2026-11-22T10:00:00.123456789-23:59",
    ],
)
def test_rfc3339_timestamps_are_accepted(stamp: str) -> None:
    assert parse_instant(stamp, "received_at").tzinfo is not None
    decode(orjson.dumps(_DOC | {"received_at": stamp}))
    assert schemas.validator(schemas.INBOUND).is_valid(_DOC | {"received_at": stamp})


@pytest.mark.parametrize(
    "stamp",
    [
        "20261122T100000Z",  # ISO 8601 basic format
        "2026-W47-1T10:00:00Z",  # week date
        "2026-326T10:00:00Z",  # ordinal date
        "2026-11-22T10:00Z",  # no seconds
        "2026-11-22 10:00:00Z",  # a space is RFC 3339's note, not its grammar
        "2026-11-22T10:00:00,5Z",  # comma fraction
        "2026-11-22T10:00:00+0100",  # offset without colon
        "2026-11-22T10:00:00",  # no offset
        "2026-11-22T24:00:00Z",
        "2026-11-22T10:00:60Z",  # leap second
        "2026-02-30T10:00:00Z",
        "２０２６-11-22T10:00:00Z",  # full-width digits: int() takes them, RFC 3339 does not
    ],
)
def test_other_iso_forms_are_refused_by_code_and_schema_alike(stamp: str) -> None:
    with pytest.raises(InputError) as caught:
        decode(orjson.dumps(_DOC | {"received_at": stamp}))
    assert caught.value.code is DeadLetterCode.INVALID_TIMESTAMP
    if stamp != "2026-02-30T10:00:00Z":  # a pattern cannot know February; the format checker does
        assert not schemas.validator(schemas.INBOUND).is_valid(_DOC | {"received_at": stamp})


def _change_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode_change(change("+15550000001", "block"), "2026-11-24T10:00:00Z"))
    for path, value in changes.items():
        target = doc
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return doc


@pytest.mark.parametrize(
    "changes",
    [
        {"address": "+1555\x000001"},
        {"address": "+1" * 1400},
        {"scope__account_id": "a\x00"},
        {"scope__sender": "s" * 300},
        {"reason": "x\n"},
        {"source__partition": 2**31},
        {"source__offset": -1},
        {"source__offset": 2**63},
        {"source__partition": True},
        {"source__offset": 1.5},
    ],
)
def test_change_events_postgres_would_refuse_are_invalid(changes: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        decode_change(orjson.dumps(_change_doc(**changes)))
    assert caught.value.code is DeadLetterCode.INVALID_CHANGE


def _letter(key: bytes | None, value: bytes | None, detail: str = "why") -> dict[str, Any]:
    letter: dict[str, Any] = orjson.loads(
        encode_dead_letter(
            stage="classifier",
            code=DeadLetterCode.INVALID_JSON,
            detail=detail,
            topic="mo.inbound",
            partition=0,
            offset=1,
            timestamp_ms=None,
            key=key,
            value=value,
            failed_at="2026-11-24T10:00:00Z",
            worker_version="1",
        )
    )
    schemas.validator(schemas.DEAD_LETTER).validate(letter)
    return letter


def test_a_dead_letter_of_a_huge_record_is_cut_and_keeps_size_and_digest() -> None:
    value, key = b"v" * 800_000, b"k" * 500_000
    letter = _letter(key, value)
    assert base64.b64decode(letter["value_b64"]) == value[:MAX_DEAD_LETTER_VALUE_BYTES]
    assert letter["value"] == {
        "truncated": True,
        "bytes": 800_000,
        "sha256": hashlib.sha256(value).hexdigest(),
    }
    assert base64.b64decode(letter["source"]["key_b64"]) == key[:MAX_DEAD_LETTER_KEY_BYTES]
    assert letter["source"]["key"]["bytes"] == 500_000
    assert dead_letter_key(key) == key[:MAX_DEAD_LETTER_KEY_BYTES]
    assert len(orjson.dumps(letter)) < 400_000  # well under Kafka's 1 MB default


def test_a_dead_letter_of_a_normal_record_is_whole() -> None:
    letter = _letter(b"key", b"value")
    assert "value" not in letter
    assert "key" not in letter["source"]
    assert dead_letter_key(b"key") == b"key"


def test_a_long_detail_is_cut() -> None:
    assert len(_letter(None, None, "d" * 5000)["error"]["detail"]) == 1000
