"""WhatsApp Cloud API webhooks: quick-reply buttons, interactive replies, marketing preferences."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.unit.events.providers.payloads import WAMID, whatsapp_body, whatsapp_button, whatsapp_preference
from worker.errors import DeadLetterCode, InputError
from worker.events.providers.whatsapp import decode


def test_the_stop_promotions_button_is_a_marketing_opt_out() -> None:
    [(doc, received)] = decode(whatsapp_button(), 0, {("whatsapp", "102290129340398"): ("acme", None)})
    assert doc == {
        "channel": "whatsapp",
        "to": "15550783881",
        "account_id": "acme",
        "message_id": WAMID,
        "from": "16505551234",
        "received_at": "2025-06-15T22:05:36.000000Z",
        "text": "Stop promotions",
        "intent": "opt_out",
        "category": "marketing",
    }
    assert received.timestamp() == 1750025136


@pytest.mark.parametrize(
    ("payload", "text", "intent"),
    [
        ("STOP_PROMOTIONS", "Not now", "opt_out"),  # the payload decides
        ("p-17", "Stop Promotions!", "opt_out"),  # else the button's text
        ("RESUME_PROMOTIONS", "Resume promotions", "opt_in"),
        ("book", "Book a table", None),  # any other button is text to classify
    ],
)
def test_which_buttons_are_signals(payload: str, text: str, intent: str | None) -> None:
    [(doc, _)] = decode(whatsapp_button(payload, text), 0, {})
    assert doc.get("intent") == intent
    assert doc["text"] == text


def test_an_interactive_reply() -> None:
    reply = {"type": "button_reply", "button_reply": {"id": "stop_promos", "title": "No thanks"}}
    message: dict[str, Any] = {"from": "16505551234", "id": "wamid.X", "timestamp": "1750025136"}
    message["type"] = "interactive"
    message["interactive"] = reply
    [(doc, _)] = decode(whatsapp_body("messages", {"messages": [message]}), 0, {})
    assert (doc["intent"], doc["category"], doc["text"]) == ("opt_out", "marketing", "No thanks")


def test_typed_text_is_classified_not_signalled() -> None:
    message = {"from": "16505551234", "id": "wamid.Y", "timestamp": "1750025136", "type": "text",
               "text": {"body": "STOP"}}  # fmt: skip
    [(doc, _)] = decode(whatsapp_body("messages", {"messages": [message]}), 0, {})
    assert doc["text"] == "STOP"
    assert "intent" not in doc


@pytest.mark.parametrize(("value", "intent"), [("stop", "opt_out"), ("resume", "opt_in")])
def test_marketing_preferences(value: str, intent: str) -> None:
    [(doc, received)] = decode(whatsapp_preference(value), 0, {})
    assert (doc["intent"], doc["category"], doc["from"], doc["text"]) == (
        intent,
        "marketing",
        "16505551234",
        value,
    )
    assert doc["message_id"] == f"user_preferences:16505551234:{value}:1731705721"
    assert received.timestamp() == 1731705721


def test_statuses_and_other_fields_are_no_messages() -> None:
    statuses = {"statuses": [{"id": "wamid.Z", "status": "delivered", "timestamp": "1750025136"}]}
    assert decode(whatsapp_body("messages", statuses), 0, {}) == []
    assert decode(whatsapp_body("message_template_status_update", {}), 0, {}) == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"object": "page", "entry": []}', DeadLetterCode.INVALID_FIELD),
        (b'{"object": "whatsapp_business_account"}', DeadLetterCode.MISSING_FIELD),
        (whatsapp_button().replace(b'"1750025136"', b'"soon"'), DeadLetterCode.INVALID_TIMESTAMP),
        (whatsapp_button().replace(b'"from":"16505551234"', b'"from":""'), DeadLetterCode.INVALID_FIELD),
    ],
)
def test_refused(raw: bytes, code: DeadLetterCode) -> None:
    with pytest.raises(InputError) as error:
        decode(raw, 0, {})
    assert error.value.code is code


def test_every_message_of_a_body_is_a_document() -> None:
    body = orjson.loads(whatsapp_button())
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"].append(value["messages"][0] | {"id": "wamid.2"})
    assert [d["message_id"] for d, _ in decode(orjson.dumps(body), 0, {})] == [WAMID, "wamid.2"]
