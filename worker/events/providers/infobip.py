"""Infobip inbound SMS (the ``MO_JSON_2`` webhook body): one HTTP body, ``results[]``, many MOs.

Documented at https://www.infobip.com/docs/api/channels/sms/inbound-sms/receive-inbound-sms-messages:
each result has ``messageId``, ``from`` (the subscriber), ``to`` (our number), ``text`` and
``receivedAt`` ("2019-11-09T16:00:00.000+0000": an offset without a colon, which RFC 3339 and so
our decoder refuse, hence the colon added here). The body names no Infobip account, so the
provider account id the rules file maps is the number written to (``to``), or ``"*"`` for all.

A body is all or nothing: one bad result dead-letters the whole record (its raw bytes are kept, and
a replay after a fix yields the same ids, so the good results are not doubled).
"""

from __future__ import annotations

import re
from typing import Any

from worker.events.providers import AccountMap, Decoded
from worker.events.providers.common import account, array, finish, load_json, member, obj, text

FORMAT = "infobip"
_OFFSET_WITHOUT_COLON = re.compile(r"([+-][0-9]{2})([0-9]{2})$")


def decode(raw: bytes | None, timestamp_ms: int, accounts: AccountMap) -> list[Decoded]:
    body = obj(load_json(raw), "(top)")
    results = array(member(body, "results", "results"), "results")
    return [_result(obj(item, f"results[{i}]"), f"results[{i}]", accounts) for i, item in enumerate(results)]


def _result(item: dict[str, Any], where: str, accounts: AccountMap) -> Decoded:
    to = text(item, "to", f"{where}.to")
    account_id, sub = account(accounts, FORMAT, to)
    doc: dict[str, Any] = {
        "message_id": text(item, "messageId", f"{where}.messageId"),
        "channel": "sms",
        "from": text(item, "from", f"{where}.from"),
        "to": to,
        "account_id": account_id,
        "text": text(item, "text", f"{where}.text", empty=True),
        "received_at": _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text(item, "receivedAt", f"{where}.receivedAt")),
    }
    if sub is not None:
        doc["subaccount_id"] = sub
    return finish(doc, where)
