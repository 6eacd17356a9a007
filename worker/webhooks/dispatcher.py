"""The webhook dispatcher (``optout dispatcher``): change topic -> signed HTTPS requests, at least once.

Its own consumer group reads the change topic (read_committed, like the projector). Each
``getmany()`` batch is planned (:mod:`worker.webhooks.plan`): every change goes to the enabled
endpoints of its account that want it. The deliveries for one (endpoint, address) are sent one at
a time, in topic order; other chains run concurrently, at most ``OPTOUT_WEBHOOK_CONCURRENCY``
requests at once. A failed request (timeout, connection error, any status but 2xx) is retried
after a full-jitter exponential wait; after ``OPTOUT_WEBHOOK_MAX_ATTEMPTS`` the delivery goes to
the webhook dead-letter topic. Offsets are committed once every delivery of the batch succeeded or
was dead-lettered (and the dead letters acknowledged), so a crash re-sends, never skips: receivers
de-duplicate on the ``Optout-Event-Id`` header.

On SIGTERM the requests in flight finish (each bounded by ``OPTOUT_WEBHOOK_TIMEOUT_MS``), no new
request or retry starts, and each partition is committed up to its first unfinished record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.backoff import Backoff, wake_on
from worker.config import Settings
from worker.errors import InputError, OptoutError
from worker.events.inbound import format_instant
from worker.logs import KAFKA, POSTGRES, ServiceState
from worker.ops.metrics import DispatcherMetrics
from worker.store.migrate import migrate
from worker.stream.kafka import make_consumer, make_producer
from worker.stream.loop import (
    Batch,
    CountingListener,
    RunStats,
    batches,
    close_clients,
    detect_features,
    produce_all,
    start_with_retry,
    update_lag,
)
from worker.webhooks.endpoints import Endpoint, Loaded
from worker.webhooks.plan import (
    Change,
    chains,
    committable,
    dead_letter,
    failure_kind,
    full_jitter,
    read_change,
)
from worker.webhooks.signature import SIGNATURE_HEADER, sign
from worker.webhooks.store import load_enabled

log = logging.getLogger("optout.dispatcher")

EVENT_ID_HEADER = "Optout-Event-Id"
ENDPOINT_HEADER = "Optout-Endpoint-Id"
ATTEMPT_HEADER = "Optout-Attempt"

#: A batch waits for its slowest chain (retries included): with the defaults, 8 attempts of up to
#: 10 s and waits of up to 1+2+...+60 s, about 5 minutes. The consumer must not be expelled from
#: its group meanwhile (aiokafka's default max.poll.interval is 5 minutes).
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000


@dataclass(slots=True)
class _Record:
    tp: TopicPartition
    offset: int
    pending: int
    """Deliveries of this record not yet delivered or dead-lettered."""


@dataclass(frozen=True, slots=True)
class _Delivery:
    record: _Record
    change: Change
    body: bytes
    key: bytes | None
    endpoint: Endpoint


@dataclass(slots=True)
class _Outcome:
    """Per batch: dead letters to produce before the commit, and whether a shutdown cut it short."""

    letters: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    abandoned: int = 0


class Dispatcher:
    """Sends one batch's deliveries; holds what outlives a batch (client, metrics, endpoint states)."""

    def __init__(
        self, settings: Settings, client: httpx.AsyncClient, metrics: DispatcherMetrics, stop: asyncio.Event
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.stop = stop
        self.slots = asyncio.Semaphore(settings.webhook_concurrency)
        self.timeout = settings.webhook_timeout_ms / 1000
        self.states: dict[int, ServiceState] = {}

    async def dispatch(
        self, decoded: list[tuple[TopicPartition, Any, Change | None]], endpoints: Sequence[Endpoint]
    ) -> tuple[dict[TopicPartition, int], _Outcome]:
        """Send every delivery of a decoded batch; the positions to commit, and the dead letters."""
        pairs: list[tuple[tuple[int, str], _Delivery]] = []
        records: dict[TopicPartition, list[_Record]] = {}
        for tp, raw, change in decoded:
            record = _Record(tp, raw.offset, 0)
            records.setdefault(tp, []).append(record)
            if change is None:
                continue
            for endpoint in endpoints:
                if endpoint.wants(change.account_id, change.category, change.emitted_at):
                    record.pending += 1
                    delivery = _Delivery(record, change, raw.value, raw.key, endpoint)
                    pairs.append(((endpoint.id, change.address), delivery))
        outcome = _Outcome()
        grouped = chains(pairs)
        if grouped:
            await asyncio.gather(*(self._chain(chain, outcome) for chain in grouped.values()))
        positions: dict[TopicPartition, int] = {}
        for tp, tp_records in records.items():
            done = {r.offset for r in tp_records if not r.pending}
            position = committable([r.offset for r in tp_records], done.__contains__)
            if position is not None:
                positions[tp] = position
        return positions, outcome

    async def _chain(self, chain: list[_Delivery], outcome: _Outcome) -> None:
        """One (endpoint, address): one delivery at a time, in order; a shutdown ends the chain."""
        for delivery in chain:
            if not await self._deliver(delivery, outcome):
                outcome.abandoned += 1
                return
            delivery.record.pending -= 1

    async def _deliver(self, delivery: _Delivery, outcome: _Outcome) -> bool:
        """Attempt until delivered or dead-lettered (True), or until a shutdown stops it (False)."""
        endpoint, settings = delivery.endpoint, self.settings
        label = str(endpoint.id)
        state = self.states.setdefault(endpoint.id, ServiceState(f"webhook endpoint {endpoint.id}", log))
        for attempt in range(1, settings.webhook_max_attempts + 1):
            if self.stop.is_set():
                return False  # not started: the next run sends it (the offset is not committed)
            async with self.slots:
                if self.stop.is_set():
                    return False  # stopped while waiting for a slot: not sent
                started = time.monotonic()
                status, reason, timed_out = await self._attempt(delivery, attempt)
                self.metrics.latency.labels(label).observe(time.monotonic() - started)
            if status is not None and 200 <= status < 300:
                state.up()
                self.metrics.deliveries.labels(label, "delivered").inc()
                return True
            state.down(reason)
            self.metrics.failed_attempts.labels(label, failure_kind(status, timed_out)).inc()
            if attempt == settings.webhook_max_attempts:
                break
            self.metrics.webhook_retries.labels(label).inc()
            wait = full_jitter(
                attempt, settings.webhook_retry_initial_ms / 1000, settings.webhook_retry_max_ms / 1000
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), wait)
        log.warning(
            "webhook endpoint %d: event %s dead-lettered after %d attempts (%s)",
            endpoint.id, delivery.change.event_id, settings.webhook_max_attempts, reason,
        )  # fmt: skip
        letter = dead_letter(
            delivery.change,
            endpoint_id=endpoint.id,
            attempts=settings.webhook_max_attempts,
            reason=reason,
            status=status,
            source=(delivery.record.tp.topic, delivery.record.tp.partition, delivery.record.offset),
            failed_at=format_instant(datetime.now(UTC)),
            worker_version=__version__,
        )
        outcome.letters.append((settings.topic_webhook_dead_letter, delivery.key, letter))
        self.metrics.deliveries.labels(label, "dead_lettered").inc()
        return True

    async def _attempt(self, delivery: _Delivery, attempt: int) -> tuple[int | None, str, bool]:
        """One request: (status or None, reason of a failure, timed out?). Never raises for the
        endpoint's faults; the reason never contains the URL or the secret."""
        endpoint = delivery.endpoint
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(endpoint.secret, delivery.body),
            EVENT_ID_HEADER: delivery.change.event_id,
            ENDPOINT_HEADER: str(endpoint.id),
            ATTEMPT_HEADER: str(attempt),
        }
        try:
            # The whole request is bounded, not only each read: a server that trickles bytes too.
            async with (
                asyncio.timeout(self.timeout),
                self.client.stream("POST", endpoint.url, content=delivery.body, headers=headers) as response,
            ):
                status = response.status_code  # the body is not read: only the status matters
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no response within {self.timeout:g}s", True
        except httpx.HTTPError as exc:
            detail = str(exc).replace(endpoint.url, "<url>") or "no detail"
            return None, f"{type(exc).__name__}: {detail}"[:300], False
        return status, f"HTTP {status}", False


def decode(batch: Batch) -> tuple[list[tuple[TopicPartition, Any, Change | None]], datetime | None]:
    """Each record with its change (None for a tombstone or a record the projector dead-letters:
    nothing to tell a receiver), and the newest ``emitted_at`` of the batch."""
    decoded: list[tuple[TopicPartition, Any, Change | None]] = []
    newest: datetime | None = None
    for tp, records in batch.items():
        for raw in records:
            change: Change | None = None
            if raw.value is not None:
                with contextlib.suppress(InputError):
                    change = read_change(raw.value)
            if change is not None and (newest is None or change.emitted_at > newest):
                newest = change.emitted_at
            decoded.append((tp, raw, change))
    return decoded, newest


async def run_dispatcher(
    settings: Settings,
    database_url: str,
    *,
    burst: bool = False,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
) -> RunStats:
    """Run until ``stop`` is set (or, with ``burst``, until the change topic is drained and idle)."""
    metrics = DispatcherMetrics(registry if registry is not None else CollectorRegistry())
    stop = stop if stop is not None else asyncio.Event()
    wake_on(stop)
    stats = RunStats(keeps_durations=burst)
    loaded = await _load(database_url, metrics, stop, migrate_first=True)
    if loaded is None:
        return stats
    loaded_at = time.monotonic()
    topic, group = settings.topic_changes, settings.webhook_group_id
    consumer = make_consumer(
        settings,
        group,
        max_poll_records=settings.batch_records(),
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
    )
    consumer.subscribe([topic], listener=CountingListener(metrics, log))
    producer: Any = None
    limits = httpx.Limits(
        max_connections=settings.webhook_concurrency, max_keepalive_connections=settings.webhook_concurrency
    )
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_ms / 1000),
        limits=limits,
        follow_redirects=False,  # a redirect is a failure: the signature was made for this URL
        headers={"User-Agent": f"optout-worker/{__version__} webhooks"},
    )
    dispatcher = Dispatcher(settings, client, metrics, stop)
    producing = Backoff(KAFKA, log)
    try:
        features = await detect_features(settings, metrics, log, stop, transactions=False)
        if features is None:
            return stats
        producer = make_producer(settings, idempotent=features.idempotence)  # dead letters only
        if not await start_with_retry([producer, consumer], metrics, log, stop):
            return stats
        count = len(loaded.endpoints)
        log.info("dispatcher consuming %s as group %s; %d webhook endpoints", topic, group, count)
        async for batch in batches(consumer, settings, stop, burst):
            started = time.monotonic()
            decoded, newest = decode(batch)
            # Every OPTOUT_WEBHOOK_REFRESH seconds (removals), and whenever the batch holds changes
            # emitted since the last load (an endpoint added meanwhile wants them).
            if time.monotonic() - loaded_at >= settings.webhook_refresh or loaded.may_miss(newest):
                loaded = await _refresh(database_url, metrics, loaded)
                loaded_at = time.monotonic()
            positions, outcome = await dispatcher.dispatch(decoded, loaded.endpoints)
            if outcome.letters and not await produce_all(producer, outcome.letters, producing, metrics, stop):
                log.error("stopping before the dead letters were acknowledged; the batch will be sent again")
                break
            if positions:
                await _commit(consumer, positions)
            if outcome.abandoned:
                log.info(
                    "stopping: %d deliveries not sent; they are sent on the next start", outcome.abandoned
                )
            count = sum(len(records) for records in batch.values())
            metrics.consumed.inc(count)
            update_lag(consumer, metrics, positions)
            stats.batch_done(count, started)
    finally:
        await client.aclose()
        await close_clients(log, *(c for c in (consumer, producer) if c is not None))
    log.info("dispatcher stopped after %d records in %d batches", stats.records, stats.batches)
    return stats


async def _commit(consumer: Any, positions: dict[TopicPartition, int]) -> None:
    """A failed commit (a rebalance took the partition) only means those records are sent again."""
    try:
        await consumer.commit(positions)
    except KafkaError as exc:
        log.warning("offset commit failed (%s): the batch's changes may be sent again", exc)


async def _load(
    database_url: str, metrics: DispatcherMetrics, stop: asyncio.Event, *, migrate_first: bool
) -> Loaded | None:
    """The enabled endpoints, waiting out a Postgres outage; None if stopped first."""
    backoff = Backoff(POSTGRES, log)
    while not stop.is_set():
        try:
            if migrate_first:
                await migrate(database_url)
            loaded = await load_enabled(database_url)
        except OptoutError as exc:
            if not exc.retriable:
                raise
            metrics.retries.labels("postgres").inc()
            await backoff.failed(exc)
            continue
        backoff.succeeded()
        metrics.endpoints.set(len(loaded.endpoints))
        return loaded
    return None


async def _refresh(database_url: str, metrics: DispatcherMetrics, current: Loaded) -> Loaded:
    """Reload the endpoints. While Postgres is away, keep sending to the ones already known (an
    endpoint added during the outage misses the changes emitted before Postgres is back)."""
    try:
        loaded = await load_enabled(database_url)
    except OptoutError as exc:
        if not exc.retriable:
            raise
        metrics.retries.labels("postgres").inc()
        POSTGRES.down(str(exc))
        return current
    POSTGRES.up()
    if {e.id for e in loaded.endpoints} != {e.id for e in current.endpoints}:
        log.info("webhook endpoints reloaded: %d enabled", len(loaded.endpoints))
    metrics.endpoints.set(len(loaded.endpoints))
    return loaded
