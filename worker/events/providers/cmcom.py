"""CM.com Business Messaging incoming messages (MO webhook), SMS and the chat channels.

Documented at https://developers.cm.com/messaging/docs/incoming-messages: a JSON object with
``from.number`` (the subscriber), ``to.number`` (our number), ``message`` (``message.text``; a plain
string is read too), ``timeUtc`` ("yyyy-MM-ddTHH:mm:ss", UTC **without** an offset: read as UTC,
"Z" appended) and ``channel`` ("SMS", "WhatsApp", "RCS"...; lower-cased, spaces as "_").

The body has no message id (``reference`` names the outgoing message replied to, shared by every
reply to it) and no account: the message id is derived from the fields that make the MO
(a redelivered webhook gets the same id, so consumers drop the duplicate), and the provider account
id the rules file maps is the number written to (``to.number``), or ``"*"`` for all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from worker.events.providers import AccountMap, Decoded
from worker.events.providers.common import account, finish, load_json, member, obj, optional_text, text

FORMAT = "cmcom"


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    body = obj(load_json(raw), "(top)")
    address = text(obj(member(body, "from", "from"), "from"), "number", "from.number")
    sender = text(obj(member(body, "to", "to"), "to"), "number", "to.number")
    message = member(body, "message", "message")
    if type(message) is str:
        words = message
    else:  # a media message may have no text: it is not an opt-out, and not an error either
        words = optional_text(obj(message, "message"), "text", "message.text") or ""
    stamp = text(body, "timeUtc", "timeUtc")
    if stamp[-1:] not in ("Z", "z") and not _has_offset(stamp):
        stamp += "Z"  # documented as UTC without an offset
    channel = (optional_text(body, "channel", "channel") or "SMS").lower().replace(" ", "_")
    account_id, sub = account(accounts, FORMAT, sender)
    doc: dict[str, Any] = {
        "message_id": "cm-" + _digest(channel, address, sender, stamp, words),
        "channel": channel,
        "from": address,
        "to": sender,
        "account_id": account_id,
        "text": words,
        "received_at": stamp,
    }
    if sub is not None:
        doc["subaccount_id"] = sub
    return [finish(doc)]


def _has_offset(stamp: str) -> bool:
    """True for "...T12:00:00+01:00" (an offset after the time), not for a bare local time."""
    time_part = stamp.partition("T")[2] or stamp.partition("t")[2]
    return "+" in time_part or "-" in time_part


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
