"""What the classifier and projector loops share: start-up with retry, burst idling, lag, stats."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)

from worker.backoff import Backoff
from worker.config import Settings
from worker.errors import OutputRefusedError, ServiceUnavailableError
from worker.heartbeat import HEARTBEAT, WORKER
from worker.logs import KAFKA
from worker.ops.metrics import _Common
from worker.stream.encoded import OwnBatches
from worker.stream.kafka import BrokerFeatures, probe_features
from worker.stream.produce import Handed, Record, acknowledged, hand_over, send_batches

#: With a stop requested and the broker unreachable, give up on a batch's output after this long;
#: it was not committed, so the next run reprocesses it.
SHUTDOWN_GRACE_SECONDS = 30.0

Batch = dict[TopicPartition, list[Any]]

#: Produce errors that no retry can fix: the record or the client is refused as such. Retrying them
#: as an outage would stall every partition for ever; they stop the worker with one line instead.
#: (Every record we produce is bounded: dead letters are cut, identifiers limited at decode time,
#: so these mean a broker or topic setting such as max.message.bytes, or a missing ACL.)
REFUSED_FOR_GOOD: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    UnsupportedVersionError,
)
#: What to check when Kafka refuses output for good: the end of both delivery modes' error line.
REFUSED_HINT = (
    "check the topic's max.message.bytes (OPTOUT_PRODUCE_BATCH_BYTES must not exceed it) "
    "and the client's ACLs"
)


@dataclass(slots=True)
class RunStats:
    """What a run did; returned by burst runs (tests, benchmarks)."""

    records: int = 0
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    first_record_at: float | None = None
    last_batch_done_at: float | None = None
    keeps_durations: bool = True
    """Whether ``batch_seconds`` keeps each batch's duration: for burst runs, which end and are
    read (tests, benchmarks); not for a worker that runs for days. Kept always, the list was the
    one thing a 10-minute soak found growing: ~290 entries a second at 25,000 MO/s exactly-once (a
    duration per partition transaction). A running worker's durations are the
    ``optout_batch_duration_seconds`` histogram's."""

    def batch_done(self, records: int, started: float) -> None:
        now = time.monotonic()
        if self.first_record_at is None:
            self.first_record_at = started
        self.records += records
        self.batches += 1
        if self.keeps_durations:
            self.batch_seconds.append(now - started)
        self.last_batch_done_at = now


class BurstIdle:
    """Decides when a ``--burst`` run is done: assigned partitions and no records for ``idle_ms``.

    Idle time counts only once partitions are assigned, so a slow group join is not mistaken
    for an empty topic.
    """

    def __init__(self, idle_ms: int, join_timeout: float = 60.0) -> None:
        self.idle = idle_ms / 1000
        self.join_deadline = time.monotonic() + join_timeout
        self.idle_since: float | None = None

    def busy(self) -> None:
        """Records arrived: the idle clock starts again."""
        self.idle_since = None

    def done(self, assigned: bool) -> bool:
        """After an empty poll: has the input been idle long enough (or the join taken too long)?"""
        now = time.monotonic()
        if not assigned:
            self.idle_since = None
            return now > self.join_deadline
        if self.idle_since is None:
            self.idle_since = now
        return now - self.idle_since >= self.idle


class CountingListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts rebalances, drops the lag series of revoked partitions, and runs an optional hook."""

    def __init__(
        self,
        metrics: _Common,
        logger: logging.Logger,
        on_assigned: Callable[[set[TopicPartition]], Awaitable[None]] | None = None,
        on_revoked: Callable[[set[TopicPartition]], Awaitable[None]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.logger = logger
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = set(revoked)
        if self.on_revoked is not None:
            await self.on_revoked(revoked)
        WORKER.partitions = max(0, WORKER.partitions - len(revoked))
        self.metrics.rebalances.labels("revoked").inc()
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(tp.topic, str(tp.partition))
        if revoked:
            self.logger.info("partitions revoked: %s", _names(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = set(assigned)
        WORKER.partitions = len(assigned)
        self.metrics.rebalances.labels("assigned").inc()
        self.logger.info("partitions assigned: %s", _names(assigned) or "none")
        if self.on_assigned is not None:
            await self.on_assigned(assigned)


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))


async def start_with_retry(
    clients: Iterable[Any], metrics: _Common, logger: logging.Logger, stop: asyncio.Event
) -> bool:
    """Start aiokafka clients, waiting out an unreachable broker. False if stopped first."""
    backoff = Backoff(KAFKA, logger)
    for client in clients:
        while True:
            if stop.is_set():
                return False
            try:
                await client.start()
                break
            except (KafkaError, OSError) as exc:
                metrics.retries.labels("kafka").inc()
                await backoff.failed(exc)
        backoff.succeeded()
    WORKER.connected = True
    return True


async def detect_features(
    settings: Settings, metrics: _Common, logger: logging.Logger, stop: asyncio.Event, *, transactions: bool
) -> BrokerFeatures | None:
    """The broker's producer features (:func:`probe_features`), waiting out an unreachable broker
    (an authentication failure is reported as the outage's reason). None if stopped first."""
    backoff = Backoff(KAFKA, logger)
    while not stop.is_set():
        try:
            features = await probe_features(settings, transactions=transactions)
            backoff.succeeded()
            return features
        except ServiceUnavailableError as exc:
            metrics.retries.labels("kafka").inc()
            await backoff.failed(exc)
    return None


def update_lag(consumer: Any, metrics: _Common, positions: dict[TopicPartition, int]) -> None:
    """Lag from the fetch responses' high watermark: no extra broker round trip per batch.

    Only for partitions still assigned: a rebalance while the batch was produced may have taken
    some away, and aiokafka's ``highwater()`` asserts on those (found by the broker-fault chaos test:
    the exactly-once classifier exited 1 after a half-open link to Apache Kafka)."""
    assigned = consumer.assignment()
    for tp, position in positions.items():
        if tp not in assigned:
            continue  # revoked meanwhile: the new owner reports its lag
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))


def tune_gc_for_throughput() -> None:
    """Fewer cyclic-GC passes in the hot loop (measured: about 11% more records per second).

    Every record allocates a dict and a few strings that reference counting frees at once; with
    the default gen-0 threshold (700) the collector still walks the young generation every few
    hundred records. Freezing what start-up allocated (rules, modules) also keeps it out of every
    full collection. Cycles are still collected, just less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def batches(
    consumer: Any,
    settings: Settings,
    stop: asyncio.Event,
    burst: bool,
    after_poll: Callable[[], Awaitable[None]] | None = None,
    max_records: int | None = None,
) -> AsyncIterator[Batch]:
    """``getmany()`` batches until ``stop`` is set or, with ``burst``, the input is drained and idle.

    The loop that consumes this finishes (and commits) each batch before asking for the next, so a
    stop request always lands between batches. ``after_poll`` runs after every poll, empty or not.
    ``max_records``: most records per batch (default: ``settings.batch_records()``).
    """
    idle = BurstIdle(settings.burst_idle_ms)
    most = max_records or settings.batch_records()
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=settings.poll_timeout_ms, max_records=most)
        KAFKA.tick()
        HEARTBEAT.tick()
        if after_poll is not None:
            await after_poll()
        if not batch:
            if burst and idle.done(bool(consumer.assignment())):
                return
            continue
        idle.busy()
        yield batch


class PendingCommits:
    """At-least-once offsets that are safe to commit (their batches' output is acked), committed
    at most every ``interval_ms`` rather than after every batch: at a steady rate most batches then
    skip the commit's broker round trip. Whatever is pending is committed before its partitions
    are revoked and when the loop ends, so a rebalance or a clean stop reprocesses nothing; only a
    crash reprocesses up to one interval more (with the same event ids)."""

    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms / 1000
        self.positions: dict[TopicPartition, int] = {}
        self.committed_at = time.monotonic()

    def add(self, positions: dict[TopicPartition, int]) -> None:
        self.positions.update(positions)

    def due(self) -> bool:
        return bool(self.positions) and time.monotonic() - self.committed_at >= self.interval

    def take(self, partitions: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The pending offsets (of ``partitions`` only, if given), no longer pending."""
        if partitions is None:
            taken, self.positions = self.positions, {}
            self.committed_at = time.monotonic()
        else:
            taken = {tp: self.positions.pop(tp) for tp in partitions if tp in self.positions}
        return taken


def positions_after(batch: Batch) -> dict[TopicPartition, int]:
    """Per partition, the offset after the batch's last record: what to commit once it is done."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items()}


async def produce_all(
    producer: AIOKafkaProducer,
    records: Sequence[tuple[str, bytes | None, bytes]],
    backoff: Backoff,
    metrics: _Common,
    stop: asyncio.Event,
    handed: Handed | None = None,
    own: OwnBatches | None = None,
) -> bool:
    """Send (topic, key, value) records and wait for every acknowledgement; resend all on failure.

    The records go out as one batch per partition (:func:`worker.stream.produce.send_batches`), in
    the order given for each key; a retry resends all of them in that order. Resending records
    that did get through is safe (their ids are deterministic); skipping any is not.
    ``handed``: the records were handed to the producer already (:func:`hand_over`); their
    acknowledgements are awaited first. ``own``: where batches built without a producer id note
    their identity (:class:`OwnBatches`). False only when stopping and the broker stayed
    unreachable for the grace period.
    """
    if not records:
        return True
    give_up_at: float | None = None
    while True:
        if handed is None:
            failure = await send_batches(producer, records, own)
        else:
            failure, handed = await acknowledged(handed), None
        if failure is None:
            backoff.succeeded()
            return True
        topic, exc = failure
        if isinstance(exc, REFUSED_FOR_GOOD):
            raise OutputRefusedError(
                f"Kafka refused a record on topic {topic} for good ({type(exc).__name__}: {exc}); "
                + REFUSED_HINT
            )
        metrics.retries.labels("kafka").inc()
        if stop.is_set():
            give_up_at = give_up_at or time.monotonic() + SHUTDOWN_GRACE_SECONDS
            if time.monotonic() > give_up_at:
                return False
        await backoff.failed(exc)


class OneInFlight:
    """At-least-once output with one batch's output in flight: the classifier classifies the next
    batch while the broker stores the last one's, and the order per key holds whatever fails.

    :meth:`send` first waits for the batch in flight to be delivered (acknowledged, after as many
    resends of all of it as that takes: :func:`produce_all`), and only then hands the new records
    to the producer, so a resend never lands after anything newer. Their delivery goes on in the
    background; ``then`` runs once they are all acknowledged (the offsets may be committed).
    """

    def __init__(
        self,
        producer: Any,
        backoff: Backoff,
        metrics: _Common,
        stop: asyncio.Event,
        log: logging.Logger,
        own: OwnBatches | None = None,
    ) -> None:
        self._producer = producer
        self._own = own
        self._backoff = backoff
        self._metrics = metrics
        self._stop = stop
        self._log = log
        self._delivery: asyncio.Task[bool] | None = None
        self._handed: Handed | None = None

    async def send(self, records: Sequence[Record], then: Callable[[], None]) -> bool:
        """Hand ``records`` over once the batch in flight is delivered. False: it was not (stopping
        with the broker unreachable), and nothing was handed over."""
        if not await self.settled():
            return False
        handed = await hand_over(self._producer, records, self._own)
        self._handed = handed
        self._delivery = asyncio.create_task(self._deliver(records, handed, then))
        return True

    async def settled(self) -> bool:
        """Wait for the batch in flight: True once it is acknowledged (or none is), False when
        stopping without its acks; a record refused for good raises here."""
        return True if self._delivery is None else await self._delivery

    async def wait(self) -> None:
        """Wait for the batch in flight to be delivered or to fail, without raising (a rebalance
        commits what was acknowledged, then the loop sees any error)."""
        if self._delivery is not None:
            await asyncio.wait([self._delivery])

    def check(self) -> None:
        """Raise the error of a delivery that failed for good, if one has (between batches)."""
        if self._delivery is not None and self._delivery.done():
            self._delivery.result()

    def cancel(self) -> None:
        """An error left the loop: the batch in flight is abandoned, never committed."""
        if self._delivery is not None and not self._delivery.done():
            self._delivery.cancel()
        if self._handed is not None:
            self._handed.abandon()  # its further batches too, should the delivery not have begun

    async def _deliver(self, records: Sequence[Record], handed: Handed, then: Callable[[], None]) -> bool:
        delivered = await produce_all(
            self._producer, records, self._backoff, self._metrics, self._stop, handed, self._own
        )
        if not delivered:
            self._log.error(
                "stopping with an unacknowledged batch; it was not committed and will be reprocessed"
            )
            return False
        then()
        return True


async def close_clients(logger: logging.Logger, *clients: Any) -> None:
    for client in clients:
        try:
            await client.stop()
        except (Exception, asyncio.CancelledError) as exc:  # closing must not mask the outcome
            logger.warning("error while closing %s: %s", type(client).__name__, exc)
