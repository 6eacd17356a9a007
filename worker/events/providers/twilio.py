"""Twilio's incoming-message webhook: the record value is the form body Twilio POSTed.

Documented at https://www.twilio.com/docs/messaging/guides/webhook-request: an
``application/x-www-form-urlencoded`` body with ``MessageSid``, ``AccountSid`` (the provider
account id the rules file maps), ``From``, ``To`` and ``Body``; WhatsApp and other channels prefix
the addresses ("whatsapp:+14155238886"), which become the channel. The form carries no time of
receipt, so ``received_at`` is the record's timestamp: the receiver that wrote the record stamps it.

``OptOutType`` (STOP, START or HELP; sent with Advanced Opt-Out, only when the whole body is one of
the Messaging Service's keywords, https://help.twilio.com/articles/31560110671259) is Twilio's own
decision: it becomes the document's ``intent`` (category ``all``), and the classifier takes it
instead of reading the text. Any other value is ignored and the text is classified as usual.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from worker.errors import DeadLetterCode, InputError
from worker.events.providers import AccountMap, Decoded
from worker.events.providers.common import account, epoch_stamp, finish, text

FORMAT = "twilio"
_INTENTS = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    form = _form(raw)
    account_id, sub = account(accounts, FORMAT, text(form, "AccountSid", "AccountSid"))
    channel, address = _channel(text(form, "From", "From"))
    _, sender = _channel(text(form, "To", "To"))
    doc: dict[str, Any] = {
        "message_id": text(form, "MessageSid", "MessageSid"),
        "channel": channel,
        "from": address,
        "to": sender,
        "account_id": account_id,
        "text": text(form, "Body", "Body", empty=True),
        "received_at": epoch_stamp(timestamp_ms, "record timestamp", millis=True),
    }
    if sub is not None:
        doc["subaccount_id"] = sub
    intent = _INTENTS.get(form.get("OptOutType", "").strip().upper())
    if intent is not None:
        doc["intent"] = intent
        doc["category"] = "all"
    return [finish(doc)]


def _form(raw: bytes | None) -> dict[str, str]:
    """The form's fields, the first value of each (Twilio sends each once)."""
    if not raw:
        raise InputError(DeadLetterCode.EMPTY_VALUE, "record value is empty")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as bad:
        raise InputError(
            DeadLetterCode.INVALID_UTF8, f"form is not valid UTF-8 (percent-decoded) at byte {bad.start}"
        ) from None
    return {name: values[0] for name, values in fields.items()}


def _channel(value: str) -> tuple[str, str]:
    """("whatsapp", "+1415...") for "whatsapp:+1415...", ("sms", value) for a plain number."""
    prefix, colon, rest = value.partition(":")
    if colon and rest and prefix.isascii() and prefix.isalpha():
        return prefix.lower(), rest
    return "sms", value
