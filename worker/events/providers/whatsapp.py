"""Meta's WhatsApp Cloud API webhooks: messages (text, button and interactive replies) and the
user's marketing preference (``user_preferences``).

Documented at https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/
(``object`` "whatsapp_business_account", ``entry[].id`` the WhatsApp Business Account id: the
provider account id the rules file maps; ``entry[].changes[]`` with ``field`` and ``value``).

* ``messages``: each of ``value.messages[]`` is an MO from ``from`` (the user's wa_id) to
  ``value.metadata.display_phone_number``, with ``id`` (wamid) and ``timestamp`` (epoch seconds).
  Typed text (``text.body``) is classified like any text. A quick-reply button
  (``type`` "button": ``button.payload``, ``button.text``) or an interactive reply
  (``interactive.button_reply`` / ``list_reply``: ``id``, ``title``) whose payload, id or title is
  a marketing opt-out button ("Stop promotions", Meta's marketing-template opt-out button, and the
  like) is a signal: ``intent`` opt_out (or opt_in for "Resume promotions"), ``category``
  marketing. Any other button reply is classified by its title, like text.
* ``user_preferences`` (https://developers.facebook.com/documentation/business-messaging/whatsapp/
  webhooks/reference/user_preferences): a user stopped (``value`` "stop") or resumed ("resume")
  ``marketing_messages`` in WhatsApp itself: opt_out / opt_in of marketing, no text to read. It has
  no message id, so one is derived from wa_id, value and timestamp (redelivery: same id).
* Anything else (delivery statuses, template and account updates): no document, no dead letter.
"""

from __future__ import annotations

import re
from typing import Any

from worker.events.providers import AccountMap, Decoded
from worker.events.providers.common import (
    account,
    array,
    epoch_stamp,
    finish,
    invalid,
    load_json,
    member,
    obj,
    optional_text,
    text,
)

FORMAT = "whatsapp"
_NOT_WORD = re.compile(r"[\W_]+")
#: Marketing opt-out / opt-in buttons, normalized (case-folded, punctuation and "_" as one space).
_MARKETING_OUT = frozenset({"stop promotions", "stop promotion", "stop promos", "stop marketing",
                            "stop marketing messages", "unsubscribe from promotions",
                            "unsubscribe from promos", "unsubscribe from marketing"})  # fmt: skip
_MARKETING_IN = frozenset({"resume promotions", "resume promos", "start promotions", "resume marketing",
                           "resume marketing messages"})  # fmt: skip
_PREFERENCES = {"stop": "opt_out", "resume": "opt_in"}


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    body = obj(load_json(raw), "(top)")
    kind = text(body, "object", "object")
    if kind != "whatsapp_business_account":
        invalid("object", f"is {kind[:64]!r}, expected 'whatsapp_business_account'")
    out: list[Decoded] = []
    for i, entry in enumerate(array(member(body, "entry", "entry"), "entry")):
        where = f"entry[{i}]"
        entry = obj(entry, where)
        account_id, sub = account(accounts, FORMAT, text(entry, "id", f"{where}.id"))
        for j, change in enumerate(array(member(entry, "changes", f"{where}.changes"), f"{where}.changes")):
            at = f"{where}.changes[{j}]"
            change = obj(change, at)
            field = text(change, "field", f"{at}.field")
            if field not in ("messages", "user_preferences"):
                continue
            value = obj(member(change, "value", f"{at}.value"), f"{at}.value")
            metadata = obj(member(value, "metadata", f"{at}.value.metadata"), f"{at}.value.metadata")
            base = {
                "channel": "whatsapp",
                "to": text(metadata, "display_phone_number", f"{at}.value.metadata.display_phone_number"),
                "account_id": account_id,
            }
            if sub is not None:
                base["subaccount_id"] = sub
            if field == "messages":
                items = array(value.get("messages", []), f"{at}.value.messages")
                out += [_message(obj(m, f"{at}.value.messages[{k}]"), base, f"{at}.value.messages[{k}]")
                        for k, m in enumerate(items)]  # fmt: skip
            else:
                items = array(member(value, "user_preferences", f"{at}.value.user_preferences"),
                              f"{at}.value.user_preferences")  # fmt: skip
                for k, item in enumerate(items):
                    found = _preference(obj(item, f"{at}.value.user_preferences[{k}]"), base,
                                        f"{at}.value.user_preferences[{k}]")  # fmt: skip
                    if found is not None:
                        out.append(found)
    return out


def _message(message: dict[str, Any], base: dict[str, Any], where: str) -> Decoded:
    doc = dict(base)
    doc["message_id"] = text(message, "id", f"{where}.id")
    doc["from"] = text(message, "from", f"{where}.from")
    doc["received_at"] = epoch_stamp(member(message, "timestamp", f"{where}.timestamp"), f"{where}.timestamp")
    kind = optional_text(message, "type", f"{where}.type")
    words = ""
    keys: tuple[str | None, ...] = ()
    if kind == "text":
        typed = obj(member(message, "text", f"{where}.text"), f"{where}.text")
        words = text(typed, "body", f"{where}.text.body", empty=True)
    elif kind == "button":
        button = obj(member(message, "button", f"{where}.button"), f"{where}.button")
        payload = optional_text(button, "payload", f"{where}.button.payload")
        words = optional_text(button, "text", f"{where}.button.text") or payload or ""
        keys = (payload, words)
    elif kind == "interactive":
        interactive = obj(member(message, "interactive", f"{where}.interactive"), f"{where}.interactive")
        for reply_kind in ("button_reply", "list_reply"):
            if reply_kind in interactive:
                at = f"{where}.interactive.{reply_kind}"
                reply = obj(interactive[reply_kind], at)
                reply_id = optional_text(reply, "id", f"{at}.id")
                words = optional_text(reply, "title", f"{at}.title") or reply_id or ""
                keys = (reply_id, words)
                break
    doc["text"] = words
    signal = _button_signal(keys)
    if signal is not None:
        doc["intent"] = signal
        doc["category"] = "marketing"
    return finish(doc, where)


def _button_signal(keys: tuple[str | None, ...]) -> str | None:
    """opt_out / opt_in when a button's payload, id or title is a marketing opt-out / opt-in button."""
    for key in keys:
        if key:
            words = _NOT_WORD.sub(" ", key.casefold()).strip()
            if words in _MARKETING_OUT:
                return "opt_out"
            if words in _MARKETING_IN:
                return "opt_in"
    return None


def _preference(item: dict[str, Any], base: dict[str, Any], where: str) -> Decoded | None:
    """A marketing stop/resume as a signal; another category or value names nothing we block."""
    if item.get("category") != "marketing_messages":
        return None
    value = text(item, "value", f"{where}.value")
    intent = _PREFERENCES.get(value)
    if intent is None:
        return None
    wa_id = text(item, "wa_id", f"{where}.wa_id")
    stamp = member(item, "timestamp", f"{where}.timestamp")
    doc = dict(base)
    doc["message_id"] = f"user_preferences:{wa_id}:{value}:{str(stamp)[:20]}"
    doc["from"] = wa_id
    doc["text"] = value
    doc["received_at"] = epoch_stamp(stamp, f"{where}.timestamp")
    doc["intent"] = intent
    doc["category"] = "marketing"
    return finish(doc, where)
