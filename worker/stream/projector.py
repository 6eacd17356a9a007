"""The projector: change topic → Postgres, exactly once, without Kafka transactions.

Each ``getmany()`` batch becomes one Postgres transaction that writes the history rows, the
last-writer-wins state and the consumed offsets together (:meth:`Store.apply`). On partition
assignment the consumer seeks to the offsets stored in Postgres, so after any crash it resumes
exactly after the last transaction that committed. Offsets are also committed to Kafka afterwards,
best effort, only so that Kafka-side lag tools see progress; Kafka's copy is never ahead of
Postgres's, so falling back to it can only reprocess, which the event ids make harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.backoff import Backoff, wake_on
from worker.config import Settings
from worker.errors import DeadLetterCode, InputError, OptoutError, RefusedError, ServiceUnavailableError
from worker.events.inbound import format_instant
from worker.events.outgoing import decode_change
from worker.logs import KAFKA, POSTGRES
from worker.model import ChangeEvent
from worker.ops.metrics import ProjectorMetrics
from worker.snapshot.schedule import snapshot_every
from worker.store.migrate import migrate
from worker.store.postgres import COMMAND_TIMEOUT, Store
from worker.stream.batch import dead_letter
from worker.stream.deadletters import log_dead_letters
from worker.stream.kafka import make_consumer, make_producer
from worker.stream.loop import (
    Batch,
    CountingListener,
    RunStats,
    batches,
    close_clients,
    detect_features,
    positions_after,
    produce_all,
    start_with_retry,
    update_lag,
)

log = logging.getLogger("optout.projector")

#: How long a stopping projector waits for a cancelled snapshot to unwind.
SNAPSHOT_CANCEL_SECONDS = 5.0


async def run_projector(
    settings: Settings,
    database_url: str,
    *,
    burst: bool = False,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
) -> RunStats:
    """Run until ``stop`` is set (or, with ``burst``, until the change topic is drained and idle)."""
    metrics = ProjectorMetrics(registry if registry is not None else CollectorRegistry())
    stop = stop if stop is not None else asyncio.Event()
    wake_on(stop)
    stats = RunStats(keeps_durations=burst)
    store = await _connect(database_url, metrics, stop)
    if store is None:
        return stats
    group, topic = settings.projector_group_id, settings.topic_changes
    consumer = make_consumer(settings, group, max_poll_records=settings.batch_records())

    # Partitions assigned since the last batch; the loop seeks them to the offsets stored in
    # Postgres *between* batches. Seeking inside the rebalance callback would race the fetcher: a
    # batch fetched meanwhile could be applied and then fetched again after the seek.
    unpositioned: set[TopicPartition] = set()
    # Partitions sought to a stored offset, until a fetch tells us their high watermark.
    unverified: dict[TopicPartition, int] = {}

    async def remember_assigned(assigned: set[TopicPartition]) -> None:
        unpositioned.update(assigned)

    # Partitions sought back to the beginning by the last poll's check: what that poll returned for
    # them predates the seek and is dropped (aiokafka drops what it prefetched itself).
    replayed: set[TopicPartition] = set()

    async def verify_positions() -> None:
        """Stored offsets that the topic contradicts cannot be trusted: replay from the beginning.

        A stored offset past a partition's end means the topic was recreated (a restarted
        memory-only dev broker, a topic deleted and created again), so the stored offsets of its
        other partitions, even those that look plausible, count records of the old incarnation:
        every assigned partition of the topic is replayed from the beginning (event ids and
        last-writer-wins make re-applying harmless; skipping is not). The check is the high
        watermark of the first fetch response after the seek, which is right on both brokers we
        test: Tansu answers a fetch past the end with nothing (and its ListOffsets(latest)
        under-reports, so ``end_offsets()`` cannot be used), Apache Kafka answers
        OFFSET_OUT_OF_RANGE, aiokafka resets that partition to the earliest offset, and the fetch
        after it reports the real end. aiokafka 0.14 speaks Metadata v5, before topic ids, so a
        recreated topic that has already grown past every stored offset goes unnoticed."""
        replayed.clear()  # a new poll: only the batch it returned can predate a seek made now
        untrusted: list[str] = []
        assigned_now = consumer.assignment()
        for tp, offset in list(unverified.items()):
            if tp not in assigned_now:  # revoked meanwhile (highwater() asserts): its owner checks it
                del unverified[tp]
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            del unverified[tp]
            if offset > highwater:
                untrusted.append(f"{tp.topic}[{tp.partition}] {offset} > {highwater}")
        if untrusted:
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
            log.warning(
                "stored offset %s is past its end: topic recreated? replaying its %d assigned "
                "partitions from the beginning (the stored offsets cannot be trusted)",
                ", ".join(untrusted), len(assigned),
            )  # fmt: skip
            unverified.clear()
            await consumer.seek_to_beginning(*assigned)
            replayed.update(assigned)

    consumer.subscribe([topic], listener=CountingListener(metrics, log, remember_assigned))
    applying = Backoff(POSTGRES, log)
    producing = Backoff(KAFKA, log)

    async def refused(letters: list[tuple[Any, InputError]]) -> bool:
        return await _dead_letter(producer, settings, letters, producing, metrics, stop)

    snapshots = (
        asyncio.create_task(snapshot_every(settings, store, metrics, stop), name="optout-snapshots")
        if settings.snapshot_interval and not burst
        else None
    )
    producer: Any = None
    try:
        features = await detect_features(settings, metrics, log, stop, transactions=False)
        if features is None:
            return stats
        # Dead letters only; idempotent where the broker allows, so a retried send is not doubled.
        producer = make_producer(settings, idempotent=features.idempotence)
        if not await start_with_retry([producer, consumer], metrics, log, stop):
            return stats
        log.info("projector consuming %s as group %s into Postgres", topic, group)
        async for batch in batches(consumer, settings, stop, burst, verify_positions):
            if unpositioned:
                sought = await _seek_to_stored(consumer, store, group, unpositioned, applying, stop)
                if sought is None:
                    break
                unverified.update(sought)
                continue  # this batch may predate the seek; the next one starts where Postgres says
            if replayed:  # fetched before the seek to the beginning: the replay reads it again
                batch = {tp: records for tp, records in batch.items() if tp not in replayed}
                if not batch:
                    continue
            started = time.monotonic()
            records, events, bad = _decode(batch)
            if bad and not await _dead_letter(producer, settings, bad, producing, metrics, stop):
                break
            positions = positions_after(batch)
            offsets = {(tp.topic, tp.partition): pos for tp, pos in positions.items()}
            if not await _apply(store, group, (records, events), offsets, applying, metrics, stop, refused):
                log.error("stopping before the batch was stored; it will be reprocessed")
                break
            await _commit_best_effort(consumer, positions)
            count = sum(len(records) for records in batch.values())
            metrics.consumed.inc(count)
            metrics.batch_records.observe(count)
            update_lag(consumer, metrics, positions)
            stats.batch_done(count, started)
    finally:
        if snapshots is not None:
            snapshots.cancel()
            # A snapshot cancelled mid-COPY makes asyncpg send the server a cancel request and
            # wait for it (up to the statement timeout); the snapshot is abandoned anyway, so the
            # shutdown waits a few seconds at most, then the store is closed (or terminated).
            await asyncio.wait([snapshots], timeout=SNAPSHOT_CANCEL_SECONDS)
        await close_clients(log, *(c for c in (consumer, producer) if c is not None))
        await store.close()
    log.info("projector stopped after %d records in %d batches", stats.records, stats.batches)
    return stats


async def _seek_to_stored(
    consumer: Any,
    store: Store,
    group: str,
    partitions: set[TopicPartition],
    backoff: Backoff,
    stop: asyncio.Event,
) -> dict[TopicPartition, int] | None:
    """Position newly assigned partitions just after the last batch Postgres committed.

    A partition with no stored offset starts from the beginning: the change topic is compacted,
    so replaying it rebuilds the state (e.g. into a new, empty database). Returns the partitions
    sought to a stored offset, or None when stopped before Postgres answered.
    """
    while True:
        try:
            stored: dict[str, dict[int, int]] = {}
            for tp in partitions:
                if tp.topic not in stored:
                    stored[tp.topic] = await store.load_offsets(group, tp.topic)
            break
        except OptoutError as exc:
            if not exc.retriable:
                raise
            if stop.is_set():
                return None
            await backoff.failed(exc)
    backoff.succeeded()
    sought: dict[TopicPartition, int] = {}
    for tp in partitions & consumer.assignment():
        offset = stored[tp.topic].get(tp.partition)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
            sought[tp] = offset
    partitions.clear()
    return sought


def _decode(batch: Batch) -> tuple[list[Any], list[ChangeEvent], list[tuple[Any, InputError]]]:
    """The decoded events with their records (same positions), and the records that failed."""
    good: list[Any] = []
    events: list[ChangeEvent] = []
    bad: list[tuple[Any, InputError]] = []
    for records in batch.values():
        for record in records:
            if record.value is None:
                continue  # a tombstone an operator wrote to retire a key: nothing to apply
            try:
                events.append(decode_change(record.value))
            except InputError as error:
                bad.append((record, error))
            else:
                good.append(record)
    return good, events, bad


async def _connect(database_url: str, metrics: ProjectorMetrics, stop: asyncio.Event) -> Store | None:
    backoff = Backoff(POSTGRES, log)
    while not stop.is_set():
        try:
            await migrate(database_url)
            # No connection floor: asyncpg would reconnect in the background (and log a traceback
            # a second) while Postgres is away; the loop's own backoff decides when to try.
            store = await Store.connect(database_url, min_size=0, command_timeout=COMMAND_TIMEOUT)
            backoff.succeeded()
            return store
        except OptoutError as exc:
            if not exc.retriable:
                raise
            metrics.retries.labels("postgres").inc()
            await backoff.failed(exc)
    return None


async def _apply(
    store: Store,
    group: str,
    decoded: tuple[list[Any], list[ChangeEvent]],
    offsets: dict[tuple[str, int], int],
    backoff: Backoff,
    metrics: ProjectorMetrics,
    stop: asyncio.Event,
    dead_letter: Callable[[list[tuple[Any, InputError]]], Awaitable[bool]],
) -> bool:
    """Apply one batch in one transaction, retrying until Postgres takes it (or we are stopped).

    An outage is waited out. Data that Postgres refuses (a constraint nobody foresaw) would fail
    the batch again on every retry and restart, so those events are found, dead-lettered first,
    and the rest of the batch is stored with its offsets: the partition moves on.
    """
    records, events = decoded
    while True:
        started = time.monotonic()
        try:
            try:
                result = await store.apply(group, events, offsets)
            except RefusedError as exc:
                refusals = await store.find_refused(events)
                if not refusals:  # refused as a batch, accepted event by event: try again
                    raise ServiceUnavailableError(str(exc)) from None
                letters = [
                    (records[r.index], InputError(DeadLetterCode.REFUSED_BY_DATABASE, r.reason))
                    for r in refusals
                ]
                if not await dead_letter(letters):
                    return False
                drop = {r.index for r in refusals}
                records = [record for i, record in enumerate(records) if i not in drop]
                events = [event for i, event in enumerate(events) if i not in drop]
                continue
        except OptoutError as exc:  # the store translates driver and socket errors
            if not exc.retriable:
                raise
            metrics.retries.labels("postgres").inc()
            if stop.is_set():
                return False
            await backoff.failed(exc)
            continue
        backoff.succeeded()
        metrics.transaction.observe(time.monotonic() - started)
        metrics.rows.labels("history").inc(result.history_inserted)
        metrics.rows.labels("state").inc(result.state_changed)
        return True


async def _commit_best_effort(consumer: Any, positions: dict[TopicPartition, int]) -> None:
    try:
        await consumer.commit(positions)
    except KafkaError as exc:
        log.debug("Kafka-side offset commit skipped: %s", exc)


async def _dead_letter(
    producer: AIOKafkaProducer,
    settings: Settings,
    bad: list[tuple[Any, InputError]],
    backoff: Backoff,
    metrics: ProjectorMetrics,
    stop: asyncio.Event,
) -> bool:
    """Malformed or refused change events go to the dead-letter topic; the projector keeps going."""
    failed_at = format_instant(datetime.now(UTC))
    letters = [  # a ConsumerRecord names its own topic and partition: it is its own ``tp``
        (settings.topic_dead_letter, *dead_letter(record, record, error, "projector", failed_at, __version__))
        for record, error in bad
    ]
    if not await produce_all(producer, letters, backoff, metrics, stop):
        return False
    for _, error in bad:
        metrics.dead_lettered.labels(error.code.value).inc()
    by_code: dict[DeadLetterCode, int] = {}
    for _, error in bad:
        by_code[error.code] = by_code.get(error.code, 0) + 1
    log_dead_letters(log, by_code, "change events")
    return True
