"""8x8 inbound messages: the ``inbound_message_received`` webhook, SMS and Messaging Apps.

Documented at https://developer.8x8.com/connect/reference/inbound-sms and
https://developer.8x8.com/connect/docs/inbound-chatapps-message: an envelope (``namespace``
"SMS" or "ChatApps", ``eventType``, ``payload``); the payload's ``umid`` (the message id),
``subAccountId`` (the provider account id the rules file maps), ``timestamp`` (ISO 8601 UTC).
SMS: ``source`` (the subscriber), ``destination`` (our number) and the text in ``body`` (the
webhook) or ``content.text`` (as 8x8's Automation Builder templates read it). Messaging Apps:
``user.msisdn`` (else ``user.channelUserId``), ``recipient.channel`` / ``recipient.channelId``,
``content.text``, or for a button or list reply ``content.interactive.*.title`` (classified as text,
like anything the subscriber typed). Other event types on the topic (delivery receipts) are not
messages from a subscriber: no document, and no dead letter.
"""

from __future__ import annotations

from typing import Any

from worker.events.providers import AccountMap, Decoded
from worker.events.providers.common import account, finish, load_json, member, obj, optional_text, text

FORMAT = "eightbyeight"
_INBOUND = "inbound_message_received"


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    body = obj(load_json(raw), "(top)")
    if text(body, "eventType", "eventType") != _INBOUND:
        return []
    payload = obj(member(body, "payload", "payload"), "payload")
    account_id, sub = account(accounts, FORMAT, text(payload, "subAccountId", "payload.subAccountId"))
    if "user" in payload:  # Messaging Apps (WhatsApp, Viber, RCS...)
        user = obj(payload["user"], "payload.user")
        recipient = obj(member(payload, "recipient", "payload.recipient"), "payload.recipient")
        address = optional_text(user, "msisdn", "payload.user.msisdn") or text(
            user, "channelUserId", "payload.user.channelUserId"
        )
        channel = text(recipient, "channel", "payload.recipient.channel").lower()
        sender = text(recipient, "channelId", "payload.recipient.channelId")
        words = _chat_text(payload)
    else:  # SMS
        address = text(payload, "source", "payload.source")
        sender = text(payload, "destination", "payload.destination")
        channel = "sms"
        words = _sms_text(payload)
    doc: dict[str, Any] = {
        "message_id": text(payload, "umid", "payload.umid"),
        "channel": channel,
        "from": address,
        "to": sender,
        "account_id": account_id,
        "text": words,
        "received_at": text(payload, "timestamp", "payload.timestamp"),
    }
    if sub is not None:
        doc["subaccount_id"] = sub
    return [finish(doc, "payload")]


def _sms_text(payload: dict[str, Any]) -> str:
    if "content" in payload:
        return text(obj(payload["content"], "payload.content"), "text", "payload.content.text", empty=True)
    if "body" in payload:
        return text(payload, "body", "payload.body", empty=True)
    return text(payload, "text", "payload.body", empty=True)


def _chat_text(payload: dict[str, Any]) -> str:
    """What the subscriber sent: typed text, else the title of the button or list row chosen."""
    content = obj(payload.get("content") or {}, "payload.content")
    typed = optional_text(content, "text", "payload.content.text")
    if typed is not None:
        return typed
    interactive = content.get("interactive")
    if interactive is not None:
        interactive = obj(interactive, "payload.content.interactive")
        for kind in ("button_reply", "list_reply"):
            if kind in interactive:
                where = f"payload.content.interactive.{kind}"
                reply = obj(interactive[kind], where)
                return optional_text(reply, "title", f"{where}.title") or text(reply, "id", f"{where}.id")
    return optional_text(content, "payload", "payload.content.payload") or ""
