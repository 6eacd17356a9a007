"""8x8 ``inbound_message_received`` (the documented SMS and Messaging Apps samples, payloads.py)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.unit.events.providers.payloads import EIGHTBYEIGHT_CHAT, EIGHTBYEIGHT_SMS
from worker.errors import DeadLetterCode, InputError
from worker.events.providers.eightbyeight import decode


def _raw(sample: dict[str, Any], **payload: Any) -> bytes:
    """``sample`` with payload fields replaced (None: left out)."""
    sample = copy.deepcopy(sample)
    sample["payload"].update(payload)
    return orjson.dumps({**sample, "payload": {k: v for k, v in sample["payload"].items() if v is not None}})


def test_the_documented_sms_sample() -> None:
    [(doc, _)] = decode(_raw(EIGHTBYEIGHT_SMS), 0, {("eightbyeight", "SubAccount-1"): ("acme", "sg")})
    assert doc == {
        "message_id": "9e09ac86-bd74-5465-851d-1eb5a5fdbb9a",  # the UMID
        "channel": "sms",
        "from": "+6581968289",
        "to": "+4534735477",
        "account_id": "acme",
        "subaccount_id": "sg",
        "text": "Test MO message",
        "received_at": "2016-01-01T14:34:56.017Z",
    }


def test_sms_text_as_the_automation_builder_reads_it() -> None:
    [(doc, _)] = decode(_raw(EIGHTBYEIGHT_SMS, body=None, content={"text": "STOP"}), 0, {})
    assert doc["text"] == "STOP"


def test_the_documented_messaging_apps_sample() -> None:
    [(doc, _)] = decode(_raw(EIGHTBYEIGHT_CHAT), 0, {})
    assert (doc["channel"], doc["from"], doc["to"], doc["text"]) == (
        "whatsapp",
        "+12025550023",
        "269a57f4-3522-eb11-8278-00155d9f27ac",
        "Test message",
    )
    assert doc["account_id"] == "eightbyeight:SubAccount-1"


def test_a_button_reply_is_read_as_its_title() -> None:
    content = {"interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "STOP"}}}
    [(doc, _)] = decode(_raw(EIGHTBYEIGHT_CHAT, content=content, type="interactive"), 0, {})
    assert doc["text"] == "STOP"
    assert "intent" not in doc


def test_other_events_are_not_messages() -> None:
    receipt = {"namespace": "SMS", "eventType": "outbound_message_status_changed", "payload": {}}
    assert decode(orjson.dumps(receipt), 0, {}) == []


@pytest.mark.parametrize(
    ("body", "payload", "code"),
    [
        (EIGHTBYEIGHT_SMS, {"umid": None}, DeadLetterCode.MISSING_FIELD),
        (EIGHTBYEIGHT_SMS, {"subAccountId": 7}, DeadLetterCode.INVALID_FIELD),
        (EIGHTBYEIGHT_SMS, {"timestamp": "2016-01-01 14:34"}, DeadLetterCode.INVALID_TIMESTAMP),
        (EIGHTBYEIGHT_CHAT, {"recipient": None}, DeadLetterCode.MISSING_FIELD),
        (EIGHTBYEIGHT_CHAT, {"user": {"name": "x"}}, DeadLetterCode.MISSING_FIELD),
    ],
)
def test_refused(body: dict[str, Any], payload: dict[str, Any], code: DeadLetterCode) -> None:
    with pytest.raises(InputError) as error:
        decode(_raw(body, **payload), 0, {})
    assert error.value.code is code
