"""The dispatcher's decisions, without I/O: what to send where, in what order, how long to wait
between attempts, what a dead letter says, and how far a partition may be committed.

Order: the deliveries for one (endpoint, address) form a *chain* sent one at a time, in the order
the batch lists them (topic order within a partition); chains run concurrently. Commit: a record is
done when every delivery it caused succeeded or was dead-lettered; a partition is committed up to
the first record that is not done (all of the batch, except when a shutdown abandoned a retry).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from worker.events.inbound import parse_instant
from worker.events.outgoing import decode_change
from worker.webhooks.endpoints import Endpoint

SCHEMA_WEBHOOK_DEAD_LETTER = "optout.webhook-dead-letter.v1"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Change:
    """What the dispatcher needs of a change event; the body it sends is the record value as is."""

    event_id: str
    account_id: str
    address: str
    category: str
    emitted_at: datetime
    document: dict[str, Any]


def read_change(raw: bytes | None) -> Change:
    """Decode a change record; raises :class:`worker.errors.InputError` for what the projector
    dead-letters (the dispatcher skips those: they are already in the dead-letter topic)."""
    event = decode_change(raw)  # the projector's checks: same events skipped by both
    document = orjson.loads(raw or b"")
    emitted_at = parse_instant(str(document.get("emitted_at")), "emitted_at")
    return Change(event.event_id, event.scope.account_id, event.address, event.category, emitted_at, document)


def targets(change: Change, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    return [e for e in endpoints if e.wants(change.account_id, change.category, change.emitted_at)]


def chains(pairs: Iterable[tuple[K, V]]) -> dict[K, list[V]]:
    """Group ``(chain key, item)`` pairs, each chain keeping the order the pairs came in."""
    grouped: dict[K, list[V]] = {}
    for key, item in pairs:
        grouped.setdefault(key, []).append(item)
    return grouped


def full_jitter(
    attempt: int, initial: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): uniform in [0, min(maximum,
    initial * 2**(attempt-1))] ("full jitter"), so endpoints that failed together do not all come
    back at the same instant, and the expected wait still doubles."""
    ceiling = min(maximum, initial * 2.0 ** min(attempt - 1, 62))
    return rand() * ceiling


def committable(offsets: Sequence[int], done: Callable[[int], bool]) -> int | None:
    """The position to commit for a partition's batch (``offsets`` in order): just after the last
    record of the prefix whose records are all done; None when the first one is not done."""
    position: int | None = None
    for offset in offsets:
        if not done(offset):
            break
        position = offset + 1
    return position


def dead_letter(
    change: Change,
    *,
    endpoint_id: int,
    attempts: int,
    reason: str,
    status: int | None,
    source: tuple[str, int, int],
    failed_at: str,
    worker_version: str,
) -> bytes:
    """A webhook dead letter (``schemas/webhook-dead-letter.v1.json``): the change as sent, which
    endpoint gave up, after how many attempts and why; never the URL or the secret."""
    topic, partition, offset = source
    return orjson.dumps(
        {
            "schema": SCHEMA_WEBHOOK_DEAD_LETTER,
            "endpoint_id": endpoint_id,
            "event_id": change.event_id,
            "attempts": attempts,
            "error": {"reason": reason[:1000], "status": status},
            "change": change.document,
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "failed_at": failed_at,
            "worker_version": worker_version,
        }
    )


def failure_kind(status: int | None, timed_out: bool) -> str:
    """The metric label of a failed attempt: a few values, whatever the endpoint answers."""
    if timed_out:
        return "timeout"
    if status is None:
        return "connection"
    return f"http_{status // 100}xx" if 100 <= status < 600 else "http_other"
