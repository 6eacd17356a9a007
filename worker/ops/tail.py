"""``optout tail replies|changes|dead-letters``: read what the workers wrote, decoded, for an
operator debugging a live system.

A plain assigned consumer (no group, nothing committed: it never disturbs the workers), from the
end of every partition (new records only) or from the beginning. Each record is one line
(``--json``: the decoded event as one JSON object per line, a dead letter's value decoded too).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

import orjson

from worker.config import Settings
from worker.errors import ServiceUnavailableError
from worker.sender.view import topic_partitions

#: The names ``optout tail`` takes, and the topic setting each one reads.
TOPICS: dict[str, Callable[[Settings], str]] = {
    "changes": lambda s: s.topic_changes,
    "replies": lambda s: s.topic_replies,
    "dead-letters": lambda s: s.topic_dead_letter,
}

_SHOWN_VALUE_CHARS = 300


def decode_value(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def dead_letter_value(event: dict[str, Any]) -> str | None:
    """The rejected record's value as text (UTF-8, undecodable bytes replaced), or None."""
    encoded = event.get("value_b64")
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded).decode("utf-8", errors="replace")
    except ValueError:
        return None


def render(kind: str, event: dict[str, Any] | None, raw: bytes | None, where: str) -> str:
    """One readable line (two for a dead letter: the reason, then the rejected value)."""
    if event is None:
        shown = "tombstone" if raw is None else repr(raw[:_SHOWN_VALUE_CHARS])
        return f"{where}  (not a JSON event) {shown}"
    if kind == "changes":
        scope = event.get("scope") or {}
        level = scope.get("level", "?")
        target = scope.get("account_id", "?")
        if level == "subaccount":
            target += f"/{scope.get('subaccount_id')}"
        elif level == "sender":
            target += f" sender {scope.get('sender')}"
        matched = ", ".join(str(v) for v in (event.get("language"), event.get("match")) if v)
        action = str(event.get("action", "?")).upper()
        if event.get("keyword") is None and event.get("source") is None:  # manual, import: no MO
            why = f"{event.get('reason')} (note {event.get('note')!r})"
        else:
            why = (
                f"keyword {event.get('keyword')!r}{f' ({matched})' if matched else ''} "
                f"rule {event.get('rule')}"
            )
        return (
            f"{event.get('occurred_at')}  {action:<7}  {event.get('address')}  {level} {target}"
            f" on {scope.get('channel')}{', marketing only' if event.get('category') == 'marketing' else ''}"
            f"  {why}  [{where}]"
        )
    if kind == "replies":
        return (
            f"{event.get('occurred_at')}  {event.get('intent', '?'):<7}  to {event.get('to')} from "
            f"{event.get('from')} ({event.get('account_id')}, {event.get('channel')}): "
            f"{event.get('text')!r}  [{where}]"
        )
    error = event.get("error") or {}
    source = event.get("source") or {}
    value = dead_letter_value(event)
    shown = "(no value)" if value is None else repr(value[:_SHOWN_VALUE_CHARS])
    if value is not None and len(value) > _SHOWN_VALUE_CHARS:
        shown += f" … ({len(value)} chars)"
    origin = f"{source.get('topic')}[{source.get('partition')}]@{source.get('offset')}"
    return (
        f"{event.get('failed_at')}  {error.get('code', '?')}  at the {event.get('stage', '?')}: "
        f"{error.get('detail')}  (from {origin}; [{where}])\n    value: {shown}"
    )


def as_json(kind: str, event: dict[str, Any] | None, raw: bytes | None) -> bytes:
    if event is None:
        return orjson.dumps({"raw": None if raw is None else raw.decode("utf-8", errors="replace")})
    if kind == "dead-letters":
        event = event | {"value_text": dead_letter_value(event)}
    return orjson.dumps(event)


async def tail(
    settings: Settings,
    kind: str,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    json_lines: bool = False,
    out: IO[str] | None = None,
) -> int:
    """Print records of ``kind`` until Ctrl-C/SIGTERM or ``limit`` records. The count printed."""
    from aiokafka import TopicPartition

    from worker.stream.kafka import make_consumer

    out = out or sys.stdout
    topic = TOPICS[kind](settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = make_consumer(settings, None)
    try:
        await asyncio.wait_for(consumer.start(), 30)
        # Asked of the admin API first: a consumer's metadata request for a missing topic makes a
        # broker with auto-creation (Tansu, Kafka's default) create it, and tail would wait for ever.
        partitions = []
        if await topic_exists(settings, topic):
            partitions = [tp.partition for tp in await topic_partitions(consumer, topic, 5.0)]
    except Exception as exc:
        await consumer.stop()
        raise ServiceUnavailableError(
            f"Kafka at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}"
        ) from None
    if not partitions:
        await consumer.stop()
        raise ServiceUnavailableError(f"topic {topic} does not exist at {settings.kafka_bootstrap}")
    shown = 0
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        print(f"optout tail: {topic} ({len(assigned)} partitions), Ctrl-C stops", file=sys.stderr)
        while not stop.is_set() and (limit is None or shown < limit):
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    if limit is not None and shown >= limit:
                        break
                    event = decode_value(record.value)
                    where = f"{record.partition}@{record.offset}"
                    line = (
                        as_json(kind, event, record.value).decode()
                        if json_lines
                        else render(kind, event, record.value, where)
                    )
                    print(line, file=out, flush=True)
                    shown += 1
    finally:
        await consumer.stop()
    return shown


async def topic_exists(settings: Settings, topic: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    from worker.stream.kafka import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()
