"""Encoding of the events we emit, and decoding of change events for the projector.

Formats are in ``schemas/``; ``tests/unit/test_schemas.py`` checks that everything encoded here
validates. Ids are derived, never random, so reprocessing a record after a crash yields the same
ids and every consumer can de-duplicate.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from worker.constants import (
    MAX_DEAD_LETTER_DETAIL_CHARS,
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_DEAD_LETTER_VALUE_BYTES,
    MAX_NOTE_CHARS,
    SCHEMA_CHANGE,
    SCHEMA_DEAD_LETTER,
    SCHEMA_REPLY,
    SCHEMA_REVIEW,
)
from worker.errors import DeadLetterCode, InputError
from worker.events.fields import field_problem
from worker.events.inbound import format_instant, parse_instant
from worker.model import Action, Category, ChangeEvent, MatchMode, ReplyRequest, Scope, ScopeLevel, Source


def dumps(doc: Any) -> bytes:
    """``orjson.dumps(doc)``, copied into an object of its own size: how every event we emit is
    encoded.

    ``orjson.dumps`` returns its bytes in a buffer of at least 4 KiB (orjson 3.13, measured with
    tracemalloc: 4.5 KB for ``{"a": 1}``, 8 KB for a 700-byte change event). The classifier keeps a
    whole batch's output until it is acked, and the change events in its confirmation memory for two
    windows: a 200,000-MO STOP storm peaked at 0.6 GB RSS without this copy, 0.24 GB with it
    (``python -m bench.peers --mixes storm --contenders classifier``). The copy costs about 0.24 µs
    per record, keyword MOs only.
    """
    return bytes(memoryview(orjson.dumps(doc)))


def derive_id(*parts: str) -> str:
    """A stable 128-bit hex id of ``parts`` (unit-separator joined, so parts cannot run together)."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def change_event_id(account_id: str, message_id: str, key: bytes) -> str:
    """Same inbound message (account + message id) and same block identity → same event id.

    Keyed on the message id rather than the record offset so an upstream that delivers one MO
    twice (a retried webhook) is de-duplicated too.
    """
    return derive_id("change", account_id, message_id, key.decode())


def reply_id(account_id: str, message_id: str) -> str:
    return derive_id("reply", account_id, message_id)


def _source(source: Source) -> dict[str, Any]:
    return {
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "message_id": source.message_id,
    }


def scope_document(scope: Scope) -> dict[str, Any]:
    return {
        "level": scope.level,  # orjson writes an enum as its value
        "account_id": scope.account_id,
        "subaccount_id": scope.subaccount_id,
        "sender": scope.sender,
        "channel": scope.channel,
    }


#: A change event's JSON up to its id, as :func:`encode_change` writes it: the same for every
#: change event. The classifier's joined encoder starts with it, and one-confirmation-per-opt-out
#: reads the facts after it at fixed positions (:func:`worker.classify.confirmations.layout_facts`).
CHANGE_HEAD = b'{"schema":' + orjson.dumps(SCHEMA_CHANGE) + b',"event_id":"'


def encode_change(event: ChangeEvent, emitted_at: str) -> bytes:
    doc = {
        "schema": SCHEMA_CHANGE,
        "event_id": event.event_id,
        "action": event.action,
        "scope": scope_document(event.scope),
        "address": event.address,
        "keyword": event.keyword,
        "rule": event.rule,
        "reason": event.reason,
        "language": event.language,
        "match": event.match,
        "category": event.category,
        "source": None if event.source is None else _source(event.source),
        "occurred_at": event.occurred_at,
        "emitted_at": emitted_at,
    }
    if event.note is not None:  # written only when there is one: MOs (nearly every event) have none
        doc["note"] = event.note
    return dumps(doc)


def decode_change(raw: bytes | None) -> ChangeEvent:
    """Parse a change event; anything malformed raises :class:`InputError` (``invalid_change``)."""
    try:
        doc = orjson.loads(raw or b"")
        scope, source = doc["scope"], doc["source"]
        event = ChangeEvent(
            event_id=_str(doc["event_id"]),
            action=Action(doc["action"]),
            scope=Scope(
                ScopeLevel(scope["level"]),
                _str(scope["account_id"]),
                _opt_str(scope.get("subaccount_id")),
                _opt_str(scope.get("sender")),
                _str(scope["channel"]),
            ),
            address=_str(doc["address"]),
            keyword=_opt_str(doc.get("keyword")),
            rule=_opt_str(doc.get("rule")),
            reason=_str(doc["reason"]),
            language=_opt_str(doc.get("language")),
            match=None if doc.get("match") is None else MatchMode(doc["match"]),
            source=None
            if source is None
            else Source(
                _str(source["topic"]),
                _int(source["partition"], _MAX_PARTITION),
                _int(source["offset"], _MAX_OFFSET),
                _str(source["message_id"]),
            ),
            category=Category(doc.get("category", Category.ALL)),
            note=_opt_text(doc.get("note")),
            # Canonical form, validated here: a bad timestamp is this event's problem (dead letter),
            # not an error that would fail the projector's whole batch again on every retry.
            occurred_at=format_instant(parse_instant(_str(doc["occurred_at"]), "occurred_at")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            DeadLetterCode.INVALID_CHANGE, f"not a valid change event: {type(exc).__name__}: {exc}"
        ) from None
    return event


#: Column types of the history and state tables: ``integer`` partitions, ``bigint`` offsets.
_MAX_PARTITION = 2**31 - 1
_MAX_OFFSET = 2**63 - 1


def _str(value: Any) -> str:
    """A string that can be a column and a key (:mod:`worker.events.fields`): no value Postgres would
    refuse reaches :meth:`Store.apply` through a change event we decoded."""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    problem = field_problem(value)
    if problem is not None:
        raise ValueError(f"a string {problem}")
    return value


def _int(value: Any, maximum: int) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise ValueError(f"expected an integer from 0 to {maximum}, got {str(value)[:32]!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _opt_text(value: Any) -> str | None:
    """A free-text field (an operator's note): any string up to :data:`MAX_NOTE_CHARS`, no NUL
    (the one character a Postgres text column refuses)."""
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_NOTE_CHARS or "\x00" in value:
        raise ValueError(f"a note holds at most {MAX_NOTE_CHARS} characters and no NUL")
    return value


def encode_reply(reply: ReplyRequest, emitted_at: str) -> bytes:
    return dumps(
        {
            "schema": SCHEMA_REPLY,
            "reply_id": reply.reply_id,
            "intent": reply.intent,
            "account_id": reply.account_id,
            "subaccount_id": reply.subaccount_id,
            "channel": reply.channel,
            "to": reply.to,
            "from": reply.sender,
            "text": reply.text,
            "keyword": reply.keyword,
            "rule": reply.rule,
            "language": reply.language,
            "match": reply.match,
            "in_reply_to": reply.source.message_id,
            "source": _source(reply.source),
            "occurred_at": reply.occurred_at,
            "emitted_at": emitted_at,
        }
    )


def encode_dead_letter(
    *,
    stage: str,
    code: DeadLetterCode,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    failed_at: str,
    worker_version: str,
) -> bytes:
    """A dead letter that always fits: the value and key are cut to documented maxima (their full
    size and sha256 kept), so a rejected 800 KB record cannot make a letter the broker refuses."""
    if len(detail) > MAX_DEAD_LETTER_DETAIL_CHARS:
        detail = detail[: MAX_DEAD_LETTER_DETAIL_CHARS - 1] + "…"
    key_b64, key_info = _excerpt(key, MAX_DEAD_LETTER_KEY_BYTES)
    value_b64, value_info = _excerpt(value, MAX_DEAD_LETTER_VALUE_BYTES)
    return dumps(
        {
            "schema": SCHEMA_DEAD_LETTER,
            "stage": stage,
            "error": {"code": code.value, "detail": detail},
            "source": {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "timestamp_ms": timestamp_ms,
                "key_b64": key_b64,
                **({"key": key_info} if key_info else {}),
            },
            "value_b64": value_b64,
            **({"value": value_info} if value_info else {}),
            "failed_at": failed_at,
            "worker_version": worker_version,
        }
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's record key: the original key, cut like ``key_b64`` when it is longer."""
    return key if key is None or len(key) <= MAX_DEAD_LETTER_KEY_BYTES else key[:MAX_DEAD_LETTER_KEY_BYTES]


def _excerpt(data: bytes | None, limit: int) -> tuple[str | None, dict[str, Any] | None]:
    """base64 of at most ``limit`` bytes, and, when cut, what was cut (size and sha256 of all)."""
    if data is None:
        return None, None
    if len(data) <= limit:
        return base64.b64encode(data).decode(), None
    info = {"truncated": True, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return base64.b64encode(data[:limit]).decode(), info


def review_id(account_id: str, message_id: str) -> str:
    return derive_id("review", account_id, message_id)


def encode_review(
    *,
    account_id: str,
    message_id: str,
    text: str,
    language: str | None,
    predicted: str,
    rule: str | None,
    candidates: list[dict[str, Any]],
    source: Source,
    occurred_at: str,
    emitted_at: str,
) -> bytes:
    """A message the rules were unsure of, for a person to label (``schemas/review-request.v1.json``).

    ``candidates``: per doubt, its ``reason``, the ``word`` it is about and what it might have been
    (``intent``, ``rule``, ``keyword``, ``language``).
    """
    return dumps(
        {
            "schema": SCHEMA_REVIEW,
            "review_id": review_id(account_id, message_id),
            "account_id": account_id,
            "text": text,
            "language": language,
            "predicted": predicted,
            "rule": rule,
            "reasons": sorted({c["reason"] for c in candidates}),
            "candidates": candidates,
            "source": _source(source),
            "occurred_at": occurred_at,
            "emitted_at": emitted_at,
        }
    )
