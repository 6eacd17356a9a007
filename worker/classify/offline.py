"""``optout classify``: the classifier's decision for JSON lines on stdin, without Kafka.

For trying rules files, replaying incidents and evaluating keyword lists: one output line per
input line, in order; a bad line yields a line with ``error`` and the run goes on. Each line says
which rule matched, how (``match``: exact, leading or phrase) and in which ``language``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from worker.classify.decide import classify, decide
from worker.classify.rules import RuleBook
from worker.errors import InputError
from worker.events.inbound import decode, peek_string, to_message
from worker.events.outgoing import scope_document
from worker.model import Intent, Source


def classify_lines(lines: Iterable[bytes], rulebook: RuleBook) -> Iterator[bytes]:
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        yield orjson.dumps(classify_line(number, raw, rulebook))


def classify_line(number: int, raw: bytes, rulebook: RuleBook) -> dict[str, Any]:
    try:
        doc, received = decode(raw)
    except InputError as error:
        return {
            "line": number,
            "message_id": peek_string(raw, "message_id"),
            "error": {"code": error.code.value, "detail": error.detail},
        }
    rules = rulebook.resolve(doc["account_id"], doc.get("subaccount_id"), doc["to"])
    match = classify(doc["text"], rules)
    result: dict[str, Any] = {"line": number, "message_id": doc["message_id"]}
    if match is None:
        return result | {
            "intent": Intent.NONE.value,
            "keyword": None,
            "rule": None,
            "match": None,
            "language": None,
            "changes": [],
            "reply": None,
        }
    decision = decide(to_message(doc, received), match, rules, Source("stdin", 0, number, doc["message_id"]))
    return result | {
        "intent": decision.intent.value,
        "keyword": match.keyword,
        "rule": match.rule.name,
        "match": match.mode.value,
        "language": match.language,
        "changes": [
            {"action": event.action.value, "scope": scope_document(event.scope), "address": event.address}
            for _, event in decision.changes
        ],
        "reply": decision.reply.text if decision.reply else None,
    }
