"""Twilio incoming-message webhook forms (the documented parameters, payloads.TWILIO)."""

from __future__ import annotations

import pytest

from tests.unit.events.providers.payloads import twilio_form
from worker.errors import DeadLetterCode, InputError
from worker.events.providers.twilio import decode

STAMP = 1764000000123  # the record timestamp: 2025-11-24T16:00:00.123Z


def test_the_documented_form_with_opt_out_type_is_a_stop_signal() -> None:
    [(doc, received)] = decode(
        twilio_form(), STAMP, {("twilio", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"): ("acme", None)}
    )
    assert doc == {
        "message_id": "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
        "channel": "sms",
        "from": "+14017122661",
        "to": "+15558675310",
        "account_id": "acme",
        "text": "STOP",
        "received_at": "2025-11-24T16:00:00.123000Z",
        "intent": "opt_out",
        "category": "all",
    }
    assert received.timestamp() == STAMP / 1000


@pytest.mark.parametrize(("value", "intent"), [("START", "opt_in"), ("HELP", "help"), ("stop", "opt_out")])
def test_opt_out_type_values(value: str, intent: str) -> None:
    [(doc, _)] = decode(twilio_form(OptOutType=value, Body=value), STAMP, {})
    assert doc["intent"] == intent


@pytest.mark.parametrize("value", [None, "", "UNKNOWN"])
def test_without_a_known_opt_out_type_the_text_is_classified(value: str | None) -> None:
    [(doc, _)] = decode(twilio_form(OptOutType=value, Body="stop please"), STAMP, {})
    assert "intent" not in doc
    assert "category" not in doc
    assert doc["text"] == "stop please"


def test_a_whatsapp_sender_is_the_whatsapp_channel() -> None:
    form = twilio_form(From="whatsapp:+14155238886", To="whatsapp:+15005550006", OptOutType=None)
    [(doc, _)] = decode(form, STAMP, {})
    assert (doc["channel"], doc["from"], doc["to"]) == ("whatsapp", "+14155238886", "+15005550006")


def test_an_unmapped_account_sid_is_prefixed() -> None:
    [(doc, _)] = decode(twilio_form(), STAMP, {})
    assert doc["account_id"] == "twilio:ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


def test_percent_encoded_unicode_and_an_empty_body() -> None:
    [(doc, _)] = decode(twilio_form(Body="ＳＴＯＰ 🛑", OptOutType=None), STAMP, {})
    assert doc["text"] == "ＳＴＯＰ 🛑"
    [(doc, _)] = decode(twilio_form(Body="", OptOutType=None, NumMedia="1"), STAMP, {})
    assert doc["text"] == ""


@pytest.mark.parametrize(
    ("raw", "stamp", "code", "detail"),
    [
        (b"", STAMP, DeadLetterCode.EMPTY_VALUE, "empty"),
        (twilio_form(MessageSid=None), STAMP, DeadLetterCode.MISSING_FIELD, "'MessageSid'"),
        (twilio_form(AccountSid=""), STAMP, DeadLetterCode.INVALID_FIELD, "'AccountSid'"),
        (twilio_form(Body=None), STAMP, DeadLetterCode.MISSING_FIELD, "'Body'"),
        (b"Body=%FF&From=x", STAMP, DeadLetterCode.INVALID_UTF8, "UTF-8"),
        (b"\xff\xfe", STAMP, DeadLetterCode.INVALID_UTF8, "UTF-8"),
        (twilio_form(), -1, DeadLetterCode.INVALID_TIMESTAMP, "record timestamp"),
        (twilio_form(From="+1\x00"), STAMP, DeadLetterCode.INVALID_FIELD, "'from'"),
    ],
)
def test_refused(raw: bytes, stamp: int, code: DeadLetterCode, detail: str) -> None:
    with pytest.raises(InputError) as error:
        decode(raw, stamp, {})
    assert error.value.code is code
    assert detail in error.value.detail
