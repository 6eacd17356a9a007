"""Example webhook bodies as the providers document them (values kept, ids and numbers made up
where the docs use placeholders), shared by the unit and integration tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

# Infobip, "Receive inbound SMS messages" webhook (MO_JSON_2):
# https://www.infobip.com/docs/api/channels/sms/inbound-sms/receive-inbound-sms-messages
INFOBIP: dict[str, Any] = {
    "results": [
        {
            "messageId": "817790313235066447",
            "from": "385916242493",
            "to": "385921004026",
            "text": "QUIZ Correct answer is Paris",
            "cleanText": "Correct answer is Paris",
            "keyword": "QUIZ",
            "receivedAt": "2019-11-09T16:00:00.000+0000",
            "smsCount": 1,
            "price": {"pricePerMessage": 0, "currency": "EUR"},
            "callbackData": "callbackData",
        }
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}


def infobip_body(*texts: str, sender: str = "385921004026", first: int = 0) -> bytes:
    """An Infobip body with one result per text (as the documented example, numbered)."""
    item = INFOBIP["results"][0]
    results = [
        item | {"messageId": f"8177903132350664{first + i:02d}", "from": f"38591624{first + i:04d}",
                "to": sender, "text": t, "receivedAt": f"2019-11-09T16:00:{i:02d}.000+0000"}
        for i, t in enumerate(texts)
    ]  # fmt: skip
    return orjson.dumps({"results": results, "messageCount": len(results), "pendingMessageCount": 0})


# Twilio, "Twilio's request to your incoming message Webhook URL" (form fields), with
# OptOutType as Advanced Opt-Out sends it:
# https://www.twilio.com/docs/messaging/guides/webhook-request
TWILIO: dict[str, str] = {
    "ToCountry": "US",
    "ToState": "CA",
    "SmsMessageSid": "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    "NumMedia": "0",
    "ToCity": "SAN FRANCISCO",
    "FromZip": "94105",
    "SmsSid": "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    "FromState": "CA",
    "SmsStatus": "received",
    "FromCity": "SAN FRANCISCO",
    "Body": "STOP",
    "FromCountry": "US",
    "To": "+15558675310",
    "MessagingServiceSid": "MG9752274e9e519418a7406176694466fa",
    "ToZip": "94105",
    "NumSegments": "1",
    "MessageSid": "SM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    "AccountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "From": "+14017122661",
    "ApiVersion": "2010-04-01",
    "OptOutType": "STOP",
}


def twilio_form(**fields: str | None) -> bytes:
    """The documented form with ``fields`` replaced (None: left out), urlencoded."""
    merged = {k: v for k, v in (TWILIO | fields).items() if v is not None}
    return urlencode(merged).encode()


# CM.com Business Messaging, "Incoming Messages" (MO webhook):
# https://developers.cm.com/messaging/docs/incoming-messages
CMCOM: dict[str, Any] = {
    "reference": "f3b4c5d6-0000-4000-8000-000000000001",
    "messageContext": "Reply to: Your order has shipped",
    "from": {"number": "+31612345678", "name": "Jan"},
    "to": {"number": "+3197010203040"},
    "message": {"text": "STOP", "media": {}, "custom": {}},
    "groupings": ["", "", ""],
    "timeUtc": "2026-11-24T12:00:00",
    "channel": "SMS",
}

# 8x8, inbound SMS webhook (https://developer.8x8.com/connect/reference/inbound-sms) and inbound
# Messaging Apps message (https://developer.8x8.com/connect/docs/inbound-chatapps-message).
EIGHTBYEIGHT_SMS: dict[str, Any] = {
    "namespace": "SMS",
    "eventType": "inbound_message_received",
    "description": "SMS inbound message",
    "payload": {
        "umid": "9e09ac86-bd74-5465-851d-1eb5a5fdbb9a",
        "subAccountId": "SubAccount-1",
        "timestamp": "2016-01-01T14:34:56.017Z",
        "source": "+6581968289",
        "destination": "+4534735477",
        "body": "Test MO message",
        "encoding": "GSM7",
        "smsCount": 2,
        "price": {"total": 0.0446592, "perSms": 0.0446592, "currency": "EUR"},
    },
}
EIGHTBYEIGHT_CHAT: dict[str, Any] = {
    "namespace": "ChatApps",
    "eventType": "inbound_message_received",
    "description": "ChatApps inbound message",
    "payload": {
        "umid": "9e09ac86-bd74-5465-851d-1eb5a5fdbb9a",
        "subAccountId": "SubAccount-1",
        "timestamp": "2016-01-01T14:34:56.017Z",
        "user": {"msisdn": "+12025550023", "channelUserId": "12025550023"},
        "recipient": {"channel": "whatsapp", "channelId": "269a57f4-3522-eb11-8278-00155d9f27ac"},
        "type": "Text",
        "content": {"text": "Test message"},
        "replyToUmid": "777a57f4-bd74-eb11-851d-00155d9fer55",
    },
}


# WhatsApp Cloud API, messages webhook (a quick-reply button of a marketing template) and the
# user_preferences webhook:
# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/user_preferences
def whatsapp_body(field: str, value_items: dict[str, Any], waba: str = "102290129340398") -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
    } | value_items
    return orjson.dumps(
        {"object": "whatsapp_business_account",
         "entry": [{"id": waba, "changes": [{"value": value, "field": field}]}]}
    )  # fmt: skip


WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
CONTEXT = {"from": "15550783881", "id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"}


def whatsapp_button(
    payload: str = "Stop promotions", text: str = "Stop promotions", wamid: str = WAMID
) -> bytes:
    return whatsapp_body(
        "messages",
        {"messages": [{
            "context": CONTEXT,
            "from": "16505551234", "id": wamid, "timestamp": "1750025136", "type": "button",
            "button": {"payload": payload, "text": text},
        }]},
    )  # fmt: skip


def whatsapp_preference(value: str = "stop") -> bytes:
    return whatsapp_body(
        "user_preferences",
        {"user_preferences": [{
            "wa_id": "16505551234", "detail": "User requested to stop marketing messages",
            "category": "marketing_messages", "value": value, "timestamp": 1731705721,
        }]},
    )  # fmt: skip
