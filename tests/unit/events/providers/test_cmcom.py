"""CM.com incoming messages (the documented fields, payloads.CMCOM): ``timeUtc`` has no offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.unit.events.providers.payloads import CMCOM
from worker.errors import DeadLetterCode, InputError
from worker.events.providers.cmcom import decode


def _raw(**changes: Any) -> bytes:
    return orjson.dumps(CMCOM | changes)


def test_the_documented_example() -> None:
    [(doc, received)] = decode(_raw(), 0, {("cmcom", "*"): ("acme", "nl")})
    assert doc["message_id"].startswith("cm-")
    assert len(doc["message_id"]) == 35
    assert {k: v for k, v in doc.items() if k != "message_id"} == {
        "channel": "sms",
        "from": "+31612345678",
        "to": "+3197010203040",
        "account_id": "acme",
        "subaccount_id": "nl",
        "text": "STOP",
        "received_at": "2026-11-24T12:00:00Z",
    }
    assert received == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # timeUtc read as UTC


def test_the_derived_message_id_is_stable_and_tells_messages_apart() -> None:
    first = decode(_raw(), 0, {})[0][0]["message_id"]
    assert decode(_raw(), 0, {})[0][0]["message_id"] == first  # a redelivered webhook: same id
    assert decode(_raw(timeUtc="2026-11-24T12:00:01"), 0, {})[0][0]["message_id"] != first
    assert decode(_raw(message={"text": "START"}), 0, {})[0][0]["message_id"] != first


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-24T12:00:00.123", "2026-11-24T12:00:00.123Z"),
        ("2026-11-24T12:00:00Z", "2026-11-24T12:00:00Z"),
        ("2026-11-24T13:00:00+01:00", "2026-11-24T13:00:00+01:00"),
    ],
)
def test_time_forms(stamp: str, expected: str) -> None:
    assert decode(_raw(timeUtc=stamp), 0, {})[0][0]["received_at"] == expected


def test_channels_and_message_forms() -> None:
    [(doc, _)] = decode(_raw(channel="WhatsApp", message="stop"), 0, {})
    assert (doc["channel"], doc["text"]) == ("whatsapp", "stop")
    [(doc, _)] = decode(_raw(channel="Apple Messages for Business", message={"media": {}}), 0, {})
    assert (doc["channel"], doc["text"]) == ("apple_messages_for_business", "")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"from": {"name": "Jan"}}, DeadLetterCode.MISSING_FIELD),
        ({"to": "+3197010203040"}, DeadLetterCode.INVALID_FIELD),
        ({"timeUtc": "24-11-2026 12:00"}, DeadLetterCode.INVALID_TIMESTAMP),
        ({"timeUtc": ""}, DeadLetterCode.INVALID_FIELD),
        ({"message": 5}, DeadLetterCode.INVALID_FIELD),
    ],
)
def test_refused(changes: dict[str, Any], code: DeadLetterCode) -> None:
    with pytest.raises(InputError) as error:
        decode(_raw(**changes), 0, {})
    assert error.value.code is code
