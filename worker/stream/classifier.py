"""The classifier: the hot loop from the inbound topic to the change, reply and dead-letter topics.

One iteration handles one ``getmany()`` batch as a unit:

1. classify every record (pure, :func:`worker.stream.batch.classify_records`, once per partition);
2. hand every derived record to the producer, then wait for the broker's acknowledgement of all
   of them (retrying the whole batch's output with backoff if the broker is unreachable);
3. only then commit, per partition, the offset after the batch's last record.

So an offset is committed only after everything derived from the records before it is durable.
A crash between 2 and 3 reprocesses the batch: the same deterministic ids come out again and the
projector and send services drop the duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.backoff import Backoff, wake_on
from worker.classify.rulesfile import load_rules
from worker.config import Settings
from worker.events.inbound import format_instant
from worker.logs import KAFKA
from worker.ops.metrics import ClassifierMetrics
from worker.stream.batch import BatchOutput, classify_records
from worker.stream.deadletters import log_dead_letters
from worker.stream.kafka import make_consumer, make_producer
from worker.stream.loop import (
    CountingListener,
    RunStats,
    batches,
    close_clients,
    positions_after,
    produce_all,
    start_with_retry,
    tune_gc_for_throughput,
    update_lag,
)
from worker.stream.topics import Topics

log = logging.getLogger("optout.classifier")


async def run_classifier(
    settings: Settings,
    *,
    burst: bool = False,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
) -> RunStats:
    """Run until ``stop`` is set (or, with ``burst``, until the input is drained and idle)."""
    rulebook = load_rules(settings.rules or None)
    tune_gc_for_throughput()
    metrics = ClassifierMetrics(registry if registry is not None else CollectorRegistry())
    stop = stop if stop is not None else asyncio.Event()
    wake_on(stop)
    topics = settings.topics
    stats = RunStats()
    consumer = make_consumer(settings, settings.group_id, max_poll_records=settings.batch_max_records)
    producer = make_producer(settings)
    consumer.subscribe([topics.inbound], listener=CountingListener(metrics, log))
    producing = Backoff(KAFKA, log)
    committing = Backoff(KAFKA, log)
    try:
        if not await start_with_retry([producer, consumer], metrics, log, stop):
            return stats
        log.info(
            "classifier consuming %s as group %s -> %s, %s, %s",
            topics.inbound, settings.group_id, topics.changes, topics.replies, topics.dead_letter,
        )  # fmt: skip
        async for batch in batches(consumer, settings, stop, burst):
            started = time.monotonic()
            out = BatchOutput(emitted_at=format_instant(datetime.now(UTC)), worker_version=__version__)
            for records in batch.values():
                classify_records(records, rulebook, out)
            if not await produce_all(producer, _outgoing(topics, out), producing, metrics, stop):
                log.error(
                    "stopping with an unacknowledged batch; it was not committed and will be reprocessed"
                )
                break
            positions = positions_after(batch)
            await _commit(consumer, positions, committing, metrics, stop)
            _observe(metrics, out, started)
            update_lag(consumer, metrics, positions)
            stats.batch_done(out.consumed, started)
    finally:
        await close_clients(log, consumer, producer)
    log.info("classifier stopped after %d records in %d batches", stats.records, stats.batches)
    return stats


def _outgoing(topics: Topics, out: BatchOutput) -> list[tuple[str, bytes | None, bytes]]:
    return [
        *((topics.changes, key, value) for key, value in out.changes),
        *((topics.replies, key, value) for key, value in out.replies),
        *((topics.dead_letter, key, value) for key, value in out.dead_letters),
        *((topics.review, key, value) for key, value in out.reviews),
    ]


async def _commit(
    consumer: Any,
    positions: dict[TopicPartition, int],
    backoff: Backoff,
    metrics: ClassifierMetrics,
    stop: asyncio.Event,
) -> None:
    while True:
        try:
            await consumer.commit(positions)
            backoff.succeeded()
            return
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while we worked: these partitions belong to another member now,
            # which will reprocess from the last commit. Our output is already durable and
            # carries the same ids, so the duplicates are harmless.
            metrics.commit_failures.inc()
            log.warning("commit refused after a rebalance (%s); the new owner reprocesses the batch", exc)
            return
        except KafkaError as exc:
            metrics.retries.labels("kafka").inc()
            if stop.is_set() and backoff.attempts > 5:
                log.error("giving up committing during shutdown: %s", exc)
                return
            await backoff.failed(exc)


def _observe(metrics: ClassifierMetrics, out: BatchOutput, started: float) -> None:
    metrics.consumed.inc(out.consumed)
    for intent, count in out.intents.items():
        metrics.classified.labels(intent.value).inc(count)
    for reason, count in out.reviews_by_reason.items():
        metrics.reviews.labels(reason).inc(count)
    for code, count in out.dead_by_code.items():
        metrics.dead_lettered.labels(code.value).inc(count)
    if out.dead_by_code:
        log_dead_letters(log, out.dead_by_code, "inbound records")
    if out.changes:
        metrics.changes.inc(len(out.changes))
    if out.replies:
        metrics.replies.inc(len(out.replies))
    metrics.batch_records.observe(out.consumed)
    metrics.batch_duration.observe(time.monotonic() - started)
    now = time.time()
    for received in out.newest_received.values():
        metrics.delay.observe(max(0.0, now - received))
