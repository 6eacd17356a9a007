"""worker.events.inbound: decoding and validating inbound-message records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.constants import MAX_TEXT_BYTES
from worker.errors import DeadLetterCode, InputError
from worker.events.inbound import canonical_instant, decode, format_instant, parse_instant, to_message
from worker.model import InboundMessage

GOOD: dict[str, Any] = {
    "message_id": "m-1",
    "channel": "sms",
    "from": "+15550001111",
    "to": "12345",
    "account_id": "acc",
    "subaccount_id": "sub",
    "text": "STOP",
    "received_at": "2026-11-24T11:00:00.5+01:00",
}
REQUIRED = ("message_id", "channel", "from", "to", "account_id", "text", "received_at")


def _raw(**changes: Any) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def _without(name: str) -> bytes:
    return orjson.dumps({k: v for k, v in GOOD.items() if k != name})


def _error(raw: bytes | None) -> InputError:
    with pytest.raises(InputError) as info:
        decode(raw)
    assert info.value.retriable is False
    assert str(info.value) == f"{info.value.code}: {info.value.detail}"
    return info.value


# --- good records ---------------------------------------------------------------------------------


def test_decode_good_record() -> None:
    doc, received = decode(_raw())
    assert doc == GOOD
    assert received == datetime(2026, 11, 24, 10, 0, 0, 500000, tzinfo=UTC)
    assert received.utcoffset() == timedelta(hours=1)


def test_to_message_maps_from_and_to() -> None:
    assert to_message(*decode(_raw())) == InboundMessage(
        message_id="m-1",
        channel="sms",
        sender="12345",
        address="+15550001111",
        account_id="acc",
        subaccount_id="sub",
        text="STOP",
        received_at="2026-11-24T10:00:00.500000Z",
    )


@pytest.mark.parametrize(
    "raw",
    [
        _raw(subaccount_id=None),
        _without("subaccount_id"),
        _raw(text=""),
        _raw(text="  "),
        _raw(extra_field={"producer": "adds things"}, another=[1, 2]),
        _raw(**{"from": "whatsapp:+447700900123"}),
        _raw(to="ACMEBANK"),
        _raw(received_at="2026-11-24T10:00:00Z"),
        _raw(received_at="2026-11-24T10:00:00.123456789-05:30"),
        _raw(text="é" * (MAX_TEXT_BYTES // 2)),
        _raw(text="😀" * (MAX_TEXT_BYTES // 4)),
        _raw(text="a" * MAX_TEXT_BYTES),
    ],
)
def test_decode_accepts(raw: bytes) -> None:
    doc, received = decode(raw)
    assert doc == orjson.loads(raw)
    assert received.tzinfo is not None


def test_to_message_without_subaccount() -> None:
    assert to_message(*decode(_without("subaccount_id"))).subaccount_id is None


# --- bad records: one code each, readable detail --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        pytest.param(None, DeadLetterCode.EMPTY_VALUE, "record value is empty", id="none"),
        pytest.param(b"", DeadLetterCode.EMPTY_VALUE, "record value is empty", id="empty"),
        pytest.param(
            b"\xff\xfe{}", DeadLetterCode.INVALID_UTF8, "not valid UTF-8 at byte 0", id="bad-utf8-start"
        ),
        pytest.param(
            b'{"text": "caf\xc3"}',
            DeadLetterCode.INVALID_UTF8,
            "not valid UTF-8 at byte 13",
            id="bad-utf8-in-string",
        ),
        pytest.param(b"{not json", DeadLetterCode.INVALID_JSON, "not valid JSON", id="not-json"),
        pytest.param(b'{"text": "STOP"', DeadLetterCode.INVALID_JSON, "not valid JSON", id="truncated"),
        pytest.param(b"STOP", DeadLetterCode.INVALID_JSON, "not valid JSON", id="plain-text"),
        pytest.param(b"[1, 2]", DeadLetterCode.NOT_AN_OBJECT, "JSON object, got array", id="array"),
        pytest.param(b"42", DeadLetterCode.NOT_AN_OBJECT, "expected a JSON object, got number", id="number"),
        pytest.param(b'"STOP"', DeadLetterCode.NOT_AN_OBJECT, "JSON object, got string", id="string"),
        pytest.param(b"null", DeadLetterCode.NOT_AN_OBJECT, "expected a JSON object", id="null"),
        pytest.param(
            _raw(text=5),
            DeadLetterCode.INVALID_FIELD,
            "field 'text' must be a string, got number",
            id="text-int",
        ),
        pytest.param(
            _raw(text=None),
            DeadLetterCode.INVALID_FIELD,
            "field 'text' must be a string, got null",
            id="text-null",
        ),
        pytest.param(
            _raw(text=["STOP"]),
            DeadLetterCode.INVALID_FIELD,
            "'text' must be a string, got array",
            id="text-list",
        ),
        pytest.param(
            _raw(account_id=""),
            DeadLetterCode.INVALID_FIELD,
            "field 'account_id' must not be empty",
            id="empty-acct",
        ),
        pytest.param(
            _raw(account_id=7),
            DeadLetterCode.INVALID_FIELD,
            "'account_id' must be a string, got number",
            id="acct-int",
        ),
        pytest.param(
            _raw(channel=None),
            DeadLetterCode.INVALID_FIELD,
            "'channel' must be a string, got null",
            id="channel-null",
        ),
        pytest.param(
            _raw(to=True), DeadLetterCode.INVALID_FIELD, "'to' must be a string, got bool", id="to-bool"
        ),
        pytest.param(
            _raw(**{"from": ""}), DeadLetterCode.INVALID_FIELD, "'from' must not be empty", id="from-empty"
        ),
        pytest.param(
            _raw(message_id=""), DeadLetterCode.INVALID_FIELD, "'message_id' must not be empty", id="id-empty"
        ),
        pytest.param(
            _raw(received_at=""),
            DeadLetterCode.INVALID_FIELD,
            "'received_at' must not be empty",
            id="at-empty",
        ),
        pytest.param(
            _raw(received_at=1764000000),
            DeadLetterCode.INVALID_FIELD,
            "'received_at' must be a string, got number",
            id="at-int",
        ),
        pytest.param(
            _raw(subaccount_id=""),
            DeadLetterCode.INVALID_FIELD,
            "'subaccount_id' must not be empty",
            id="sub-empty",
        ),
        pytest.param(
            _raw(subaccount_id=3),
            DeadLetterCode.INVALID_FIELD,
            "'subaccount_id' must be a string, got number",
            id="sub-int",
        ),
        pytest.param(
            _raw(text="é" * (MAX_TEXT_BYTES // 2 + 1)),
            DeadLetterCode.TEXT_TOO_LARGE,
            f"text is {MAX_TEXT_BYTES + 2} bytes, the limit is {MAX_TEXT_BYTES}",
            id="text-2-byte-chars",
        ),
        pytest.param(
            _raw(text="😀" * (MAX_TEXT_BYTES // 4 + 1)),
            DeadLetterCode.TEXT_TOO_LARGE,
            f"text is {MAX_TEXT_BYTES + 4} bytes",
            id="text-4-byte-chars",
        ),
        pytest.param(
            _raw(text="a" * (MAX_TEXT_BYTES + 1)),
            DeadLetterCode.TEXT_TOO_LARGE,
            f"text is {MAX_TEXT_BYTES + 1} bytes",
            id="text-ascii",
        ),
        pytest.param(
            _raw(received_at="2026-11-24T10:00:00"),
            DeadLetterCode.INVALID_TIMESTAMP,
            "received_at '2026-11-24T10:00:00' has no UTC offset",
            id="naive",
        ),
        pytest.param(
            _raw(received_at="yesterday"),
            DeadLetterCode.INVALID_TIMESTAMP,
            "received_at 'yesterday' is not an RFC 3339 timestamp",
            id="garbage",
        ),
        pytest.param(
            _raw(received_at="2026-02-30T10:00:00Z"),
            DeadLetterCode.INVALID_TIMESTAMP,
            "is not an RFC 3339 timestamp",
            id="no-such-day",
        ),
    ],
)
def test_decode_rejects(raw: bytes | None, code: DeadLetterCode, detail: str) -> None:
    error = _error(raw)
    assert error.code is code
    assert detail in error.detail, error.detail
    assert "\n" not in error.detail


@pytest.mark.parametrize("name", REQUIRED)
def test_missing_required_field(name: str) -> None:
    error = _error(_without(name))
    assert error.code is DeadLetterCode.MISSING_FIELD
    assert error.detail == f"required field {name!r} is missing"


def test_first_offending_field_is_named() -> None:
    doc = {k: v for k, v in GOOD.items() if k not in ("channel", "text")}
    assert _error(orjson.dumps(doc)).detail == "required field 'channel' is missing"
    assert _error(_raw(channel=1, account_id="")).detail == "field 'channel' must be a string, got number"


def test_garbage_timestamp_detail_is_bounded() -> None:
    error = _error(_raw(received_at="x" * 10_000))
    assert error.code is DeadLetterCode.INVALID_TIMESTAMP
    assert len(error.detail) < 200


def test_text_too_large_is_checked_before_the_timestamp() -> None:
    error = _error(_raw(text="€" * MAX_TEXT_BYTES, received_at="garbage"))
    assert error.code is DeadLetterCode.TEXT_TOO_LARGE


# --- timestamps -----------------------------------------------------------------------------------


def test_parse_instant_keeps_the_offset() -> None:
    instant = parse_instant("2026-11-24T10:00:00-05:00", "x")
    assert instant.utcoffset() == timedelta(hours=-5)
    assert instant == datetime(2026, 11, 24, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (datetime(2026, 11, 24, 10, tzinfo=UTC), "2026-11-24T10:00:00.000000Z"),
        (datetime(2026, 11, 24, 10, 0, 0, 1, tzinfo=UTC), "2026-11-24T10:00:00.000001Z"),
        (datetime(2026, 11, 24, 1, tzinfo=timezone(timedelta(hours=2))), "2026-11-23T23:00:00.000000Z"),
        (datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-1))), "2026-11-25T00:30:00.000000Z"),
    ],
)
def test_format_instant_is_canonical_utc(instant: datetime, text: str) -> None:
    assert format_instant(instant) == text


def test_equal_instants_format_equal_and_sort_by_time() -> None:
    a = parse_instant("2026-11-24T10:00:00+01:00", "x")
    b = parse_instant("2026-11-24T09:00:00Z", "x")
    c = parse_instant("2026-11-24T09:00:00.000001Z", "x")
    assert format_instant(a) == format_instant(b)
    assert format_instant(b) < format_instant(c)


def test_format_instant_pads_early_years() -> None:
    assert format_instant(parse_instant("0999-01-01T00:00:00Z", "x")) == "0999-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("received_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamps_outside_the_utc_range_are_input_errors(received_at: str) -> None:
    with pytest.raises(InputError) as info:
        to_message(*decode(_raw(received_at=received_at)))
    assert info.value.code is DeadLetterCode.INVALID_TIMESTAMP


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from([0, 1, 2, 3, 4, 5, 6]),
)
def test_the_message_timestamp_fast_path_is_format_instant(moment: datetime, digits: int) -> None:
    """to_message's slice for "...:ssZ" and "...:ss.fffZ" gives exactly format_instant's text."""
    m = moment
    stamp = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if digits:
        stamp += "." + f"{moment.microsecond:06d}"[:digits]
    stamp += "Z"
    doc, received = decode(_raw(received_at=stamp))
    assert canonical_instant(stamp, received) == format_instant(received)
    assert to_message(doc, received).received_at == format_instant(received)


@pytest.mark.parametrize(
    "stamp", ["2026-11-24T11:00:00.5+01:00", "2026-11-24t10:00:00z", "2026-11-24T10:00:00.1234567Z"]
)
def test_other_timestamp_forms_take_format_instant(stamp: str) -> None:
    doc, received = decode(_raw(received_at=stamp))
    assert to_message(doc, received).received_at == format_instant(received)


def test_a_subaccount_with_a_control_character_is_still_refused() -> None:
    with pytest.raises(InputError, match="subaccount_id") as caught:
        decode(_raw(subaccount_id="sub\x00"))
    assert caught.value.code is DeadLetterCode.INVALID_FIELD
