"""The classifier: the hot loop from the inbound topic to the change, reply and dead-letter topics.

One iteration handles one ``getmany()`` batch as a unit:

1. classify every record (pure, :func:`worker.stream.batch.classify_records`, once per partition);
2. hand every derived record to the producer, and wait for the broker's acknowledgement of all
   of them (retrying the whole batch's output with backoff if the broker is unreachable);
3. only then commit, per partition, the offset after the batch's last record.

So an offset is committed only after everything derived from the records before it is durable.
That is the **at-least-once** mode: a crash between 2 and 3 reprocesses the batch, the same
deterministic ids come out again and the projector and send services drop the duplicates.

The wait of step 2 overlaps step 1 of the next batch: while the broker stores batch N's output,
the loop classifies batch N+1, then waits for N's acks, and only then hands N+1's output over.
So one batch's output is in flight at a time, and a retry resends N's output before anything of
N+1: per key, the topics keep the input order whatever fails. Timed inside the loop before (2
cores, Tansu, ``make bench``'s mixes), it waited for acks 21% of its time on normal chat, 27% on
the campaign mix and 41% in a STOP storm; alternated with the code before, three rounds, the
campaign mix went from 98k to 129k MOs/s and the storm from 28k to 35k (with the C join of
:mod:`worker.events.joined`). The overlap needs turns of the event loop, where aiokafka's sender
sends the output and reads the broker's answers: the batch step gives one every
:data:`~worker.constants.CLASSIFY_CHUNK_RECORDS` records. A stop request still finishes the batch
in hand: it is handed over, acked and committed before the loop ends.

Where the broker has transactions (Apache Kafka and the like) the classifier runs **exactly-once**
instead: steps 2 and 3 become a transaction, which commits the output and the consumed offsets
together. One transactional producer serves the whole process where the broker has KIP-447's
requests (:mod:`worker.stream.process_delivery`), one per input partition elsewhere
(:mod:`worker.stream.delivery`: why, and how a new owner avoids stale offsets); ``OPTOUT_TRANSACTIONS``
chooses. A producer's transactions follow one another: what the loop classifies while one commits
goes into its next one (:class:`TransactionCycles`). Its batches are bigger
(``OPTOUT_BATCH_MAX_RECORDS=auto``). ``OPTOUT_DELIVERY`` chooses the mode (``auto`` by default:
exactly-once where the broker has transactions); the classifier logs the mode it runs in, in one
line, at start. Producers are idempotent wherever the broker supports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.backoff import Backoff, wake_on
from worker.classify.confirmations import RecentChanges
from worker.classify.rules import RuleBook
from worker.classify.rulesfile import load_rules
from worker.config import Settings
from worker.constants import CLASSIFY_CHUNK_RECORDS
from worker.errors import ConfigError
from worker.events.inbound import format_instant
from worker.events.providers import CANONICAL
from worker.logs import KAFKA
from worker.ops.metrics import ClassifierMetrics
from worker.stream.allocator import keep_big_buffers
from worker.stream.batch import BatchOutput, classify_records
from worker.stream.cycles import TransactionCycles
from worker.stream.deadletters import log_dead_letters
from worker.stream.delivery import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    PER_PROCESS,
    Delivered,
    PartitionProducers,
    TransactionalOutput,
    transaction_layout,
)
from worker.stream.encoded import OwnBatches
from worker.stream.kafka import BrokerFeatures, make_consumer, make_producer
from worker.stream.loop import (
    Batch,
    CountingListener,
    OneInFlight,
    PendingCommits,
    RunStats,
    batches,
    close_clients,
    detect_features,
    positions_after,
    start_with_retry,
    tune_gc_for_throughput,
    update_lag,
)
from worker.stream.process_delivery import ProcessProducer
from worker.stream.produce import ByTopic, producer_ids
from worker.stream.recent import RecentTail
from worker.stream.records import RawPassingOver
from worker.stream.rules_reload import RulesReloader
from worker.stream.topics import Topics

log = logging.getLogger("optout.classifier")


async def run_classifier(
    settings: Settings,
    *,
    burst: bool = False,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    reload: asyncio.Event | None = None,
) -> RunStats:
    """Run until ``stop`` is set (or, with ``burst``, until the input is drained and idle).

    ``reload`` (set by SIGHUP): reload the rules file between batches, as when it changes.
    """
    rulebook = load_rules(settings.rules or None)
    rulebook.chat_bitmaps()  # built now, not inside the first batch
    tune_gc_for_throughput()
    keep_big_buffers()  # glibc: the produce and fetch buffers reused, not mapped afresh
    metrics = ClassifierMetrics(registry if registry is not None else CollectorRegistry())
    rules = RulesReloader(settings.rules, rulebook, metrics)
    tail: RecentTail | None = None  # one confirmation per opt-out; None: OPTOUT_CONFIRMATION_WINDOW=0
    stop = stop if stop is not None else asyncio.Event()
    wake_on(stop)
    topics = settings.topics
    stats = RunStats(keeps_durations=burst)
    consumer = make_consumer(
        settings,
        settings.group_id,
        raw_records=True,
        max_poll_records=settings.batch_records(),
        fetch_min_bytes=settings.fetch_min_bytes,  # fewer, larger cycles at a steady rate
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    # The whole assignment, until the loop has positioned it (exactly-once mode only; see
    # worker.stream.delivery). aiokafka rebalances eagerly: each assignment replaces the last.
    unpositioned: set[TopicPartition] = set()

    async def remember_assigned(assigned: set[TopicPartition]) -> None:
        unpositioned.clear()
        unpositioned.update(assigned)
        if tail is not None:
            tail.expect_catch_up()  # the previous owner's last blocks, before our first batch

    # At-least-once: acked offsets, committed at most every OPTOUT_COMMIT_INTERVAL_MS (after a
    # poll, empty or not), before their partitions are revoked, and when the loop ends.
    pending = PendingCommits(settings.commit_interval_ms)
    # At-least-once: the output, one batch of it in flight while the loop classifies the next one
    # (see the module docstring). Set once the producer is.
    output: OneInFlight | None = None

    async def deliver(offsets: dict[TopicPartition, tuple[int, int]], items: list[Classified]) -> Delivered:
        """Exactly-once: one transaction of the output of ``offsets``' partitions (one or more
        batches' of each)."""
        assert partitions is not None
        outs = [out for out, _ in items]
        result = await partitions.deliver(offsets, _outgoing_all(topics, outs), producing, stop)
        if result.committed:
            consumed = 0
            for out in outs:
                _observe(metrics, out)
                consumed += out.consumed
            started = items[0][1]
            _observe_batch(metrics, consumed, started)
            update_lag(consumer, metrics, {tp: after for tp, (_, after) in offsets.items()})
            stats.batch_done(consumed, started)
        elif result.fenced:
            metrics.commit_failures.inc()
            with contextlib.suppress(Exception):
                consumer.pause(*offsets)  # until the next assignment, which repositions them
        return result

    # Exactly-once: each producer's transactions, one after another, while the loop goes on (the
    # layout, a producer per process or per partition, is known once the broker is: set below).
    transactions: TransactionCycles[Classified] = TransactionCycles(deliver)

    async def commit_revoked(revoked: set[TopicPartition]) -> None:
        await transactions.drain()  # exactly-once: what was classified is committed (or not) first
        if output is not None:
            await output.wait()  # acked (or failed) first: then its offsets are pending
        taken = pending.take(revoked)
        if taken:
            await _commit_once(consumer, taken, metrics)

    async def after_poll() -> None:
        if output is not None:
            output.check()  # a record refused for good stops the loop now, not at the next batch
        transactions.check()  # the same in exactly-once mode
        if reload is not None and reload.is_set():
            reload.clear()
            rules.request()
        await rules.poll()
        if pending.due():
            await _commit(consumer, pending.take(), committing, metrics, stop)

    # The inbound topic is canonical; each extra input topic has its format, looked up once per
    # partition batch (classify_records), never per record.
    formats = dict(topics.inputs)

    def acked(out: BatchOutput, positions: dict[TopicPartition, int], started: float) -> None:
        """A batch's output is acknowledged: its offsets may be committed."""
        pending.add(positions)  # committed by after_poll once due
        _observe(metrics, out)
        _observe_batch(metrics, out.consumed, started)
        update_lag(consumer, metrics, positions)
        stats.batch_done(out.consumed, started)

    def own_producers() -> Iterator[tuple[int, int]]:
        """Our producers' ids: the change tail passes their batches over (merged already)."""
        if partitions is not None:
            return producer_ids(partitions.producers.values())
        return producer_ids([] if producer is None else [producer])

    own_batches = OwnBatches()  # without a producer id (Tansu): our batches by their identity
    own = RawPassingOver(own_producers, own_batches)
    listener = CountingListener(metrics, log, remember_assigned, commit_revoked)
    consumer.subscribe([topics.inbound, *formats], listener=listener)
    producing = Backoff(KAFKA, log)
    committing = Backoff(KAFKA, log)
    producer: Any = None
    partitions: TransactionalOutput | None = None
    try:
        features = await detect_features(
            settings, metrics, log, stop, transactions=settings.delivery != AT_LEAST_ONCE
        )
        if features is None:
            return stats
        mode = delivery_mode(settings, features)
        log.info("%s", mode_line(settings, mode, features))
        if mode == EXACTLY_ONCE:
            per_process = transaction_layout(settings, features) == PER_PROCESS
            partitions = (ProcessProducer if per_process else PartitionProducers)(settings, consumer, log)
            transactions = TransactionCycles(
                deliver, settings.txn_interval_ms / 1000, per_process=per_process
            )
        else:
            producer = make_producer(settings, idempotent=features.idempotence)
            output = OneInFlight(producer, producing, metrics, stop, log, own_batches)
        if not await start_with_retry([c for c in (producer, consumer) if c], metrics, log, stop):
            return stats
        if settings.confirmation_window:
            tail = await RecentTail.open(settings, stop, own)
            if tail is None:
                return stats
        else:
            log.info("every opt-out is confirmed (OPTOUT_CONFIRMATION_WINDOW=0)")
        log.info(
            "classifier consuming %s as group %s -> %s, %s, %s",
            ", ".join([topics.inbound, *(f"{t} ({f})" for t, f in topics.inputs)]),
            settings.group_id, topics.changes, topics.replies, topics.dead_letter,
        )  # fmt: skip
        most = settings.batch_records(exactly_once=mode == EXACTLY_ONCE)
        async for batch in batches(consumer, settings, stop, burst, after_poll, most):
            started = time.monotonic()
            if tail is not None and tail.needs_catch_up:
                await tail.catch_up(stop)
            rulebook = rules.current  # swapped by after_poll only: between batches
            recent = tail.recent if tail is not None else None
            if recent is not None:
                metrics.recent_changes.set(len(recent))
            if partitions is not None:
                if transactions.stopping:
                    break  # a transaction left uncommitted while stopping: hand nothing more over
                if unpositioned or not partitions.producers.keys() >= batch.keys():
                    # A new assignment (or records of a partition we hold no producer for, should
                    # a fetch ever beat the rebalance listener): own the whole assignment afresh,
                    # once what was classified is committed.
                    if not await transactions.settled():
                        break
                    taking = set(unpositioned) or set(consumer.assignment())
                    unpositioned.clear()
                    if not await partitions.take_over(taking, producing, stop):
                        break
                    transactions.fenced.clear()  # repositioned: their records are ours again
                    continue  # fetched before the seek: the next batch starts at the committed offsets
                await _classify_into_transactions(batch, rulebook, formats, recent, transactions, started)
                await transactions.room(most)  # behind: at most a batch's worth queued
                continue
            out = BatchOutput(
                emitted_at=format_instant(datetime.now(UTC)), worker_version=__version__, memory=recent
            )
            for tp, records in batch.items():
                await _classify_yielding(tp, records, rulebook, out, formats.get(tp.topic, CANONICAL))
            assert output is not None  # at-least-once
            if not await output.send(
                _outgoing(topics, out), partial(acked, out, positions_after(batch), started)
            ):
                break  # the previous batch's output was not acked: this one was not handed over
        if output is not None:
            await output.settled()  # stopping (or drained, in burst mode): the last batch is finished
        await transactions.settled()  # exactly-once: what was classified is committed
        if pending.positions:  # what is acked is committed
            await _commit(consumer, pending.take(), committing, metrics, stop)
    finally:
        if output is not None:
            output.cancel()  # if an error left the loop: not committed, so reprocessed
        transactions.cancel()
        if tail is not None:
            await tail.close()
        if partitions is not None:
            await partitions.close()
        await close_clients(log, *(c for c in (consumer, producer) if c))
    log.info("classifier stopped after %d records in %d batches", stats.records, stats.batches)
    return stats


async def _classify_yielding(
    tp: TopicPartition,
    records: list[Any],
    rulebook: RuleBook,
    out: BatchOutput,
    fmt: str,
    *,
    first_turn: bool = True,
) -> None:
    """:func:`classify_records` in slices of :data:`CLASSIFY_CHUNK_RECORDS`, with a turn of the
    event loop between them (and before the first, with ``first_turn``): aiokafka's sender, the
    fetcher and the transactions run in this loop, and a partition batch classified at once kept
    them from sending the last output and reading the broker's answers until it was done (see the
    constant for what that cost)."""
    for start in range(0, len(records), CLASSIFY_CHUNK_RECORDS):
        if start or first_turn:
            await asyncio.sleep(0)
        classify_records(tp, records[start : start + CLASSIFY_CHUNK_RECORDS], rulebook, out, fmt)


async def _classify_into_transactions(
    batch: Batch,
    rulebook: RuleBook,
    formats: dict[str, str],
    recent: RecentChanges | None,
    transactions: TransactionCycles[Classified],
    started: float,
) -> None:
    """Exactly-once: each partition's records classified into an output of its own, queued for
    its partition's next transaction as soon as it is classified, not once the whole batch is:
    the batch step gives the event loop turns, in which a partition's transaction may commit and
    its next one start with what is queued by then. Queued after the whole batch, a partition's
    output waited for that next cycle too (MO -> change event p50 / p99 at 20,000 MO/s 21-22 / 65-69
    ms without the turns, 24-25 / 79-80 ms with them queued late, two 120 s runs each). For the same
    reason a partition batch of at most :data:`CLASSIFY_CHUNK_RECORDS` (a steady rate's) gets no
    turn at all: only a backlog's big batches are classified in slices.

    The memory notes their changes as they are classified (see :mod:`worker.classify.confirmations`:
    a fenced transaction's new owner produces the same events)."""
    emitted_at = format_instant(datetime.now(UTC))
    for tp, records in batch.items():
        out = BatchOutput(emitted_at=emitted_at, worker_version=__version__, memory=recent)
        await _classify_yielding(
            tp, records, rulebook, out, formats.get(tp.topic, CANONICAL), first_turn=False
        )
        transactions.add(tp, records[0].offset, records[-1].offset + 1, (out, started), len(records))


def delivery_mode(settings: Settings, features: BrokerFeatures) -> str:
    """``OPTOUT_DELIVERY`` against what the broker has; exactly-once on a broker without
    transactions is a configuration error, not a silent downgrade."""
    if settings.delivery == EXACTLY_ONCE and not features.transactions:
        raise ConfigError(
            f"OPTOUT_DELIVERY=exactly-once, but the broker at {settings.kafka_bootstrap} has no "
            f"transactions ({features.detail}); use auto or at-least-once"
        )
    if settings.delivery == AT_LEAST_ONCE or not features.transactions:
        return AT_LEAST_ONCE
    return EXACTLY_ONCE


def mode_line(settings: Settings, mode: str, features: BrokerFeatures) -> str:
    if mode == EXACTLY_ONCE:
        producers = (
            "one transactional producer for the process, fenced by the group's generation (KIP-447),"
            if transaction_layout(settings, features) == PER_PROCESS
            else "a transactional producer per input partition"
        )
        return (
            f"delivery: exactly-once ({producers} commits the output and the input offsets together; "
            "readers use read_committed)"
        )
    if settings.delivery == AT_LEAST_ONCE:
        why = "OPTOUT_DELIVERY=at-least-once"
    else:
        why = f"the broker has no transactions: {features.detail}"
    producer = "idempotent" if features.idempotence else "plain (no idempotent producer on this broker)"
    return (
        f"delivery: at-least-once ({why}); a crash may produce a batch again with the same "
        f"deterministic ids, which the projector and the send services drop; producer {producer}"
    )


Classified = tuple[BatchOutput, float]
"""Exactly-once: a partition's output of one batch, and when that batch's step started."""


def _outgoing_all(topics: Topics, outs: list[BatchOutput]) -> ByTopic:
    """The output of one or more batches of a partition, in order: one transaction's records."""
    if len(outs) == 1:
        return _outgoing(topics, outs[0])
    return ByTopic(
        (
            (topics.changes, [r for out in outs for r in out.changes]),
            (topics.replies, [r for out in outs for r in out.replies]),
            (topics.dead_letter, [r for out in outs for r in out.dead_letters]),
            (topics.review, [r for out in outs for r in out.reviews]),
        )
    )


def _outgoing(topics: Topics, out: BatchOutput) -> ByTopic:
    return ByTopic(
        (
            (topics.changes, out.changes),
            (topics.replies, out.replies),
            (topics.dead_letter, out.dead_letters),
            (topics.review, out.reviews),
        )
    )


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


async def _commit_once(
    consumer: Any, positions: dict[TopicPartition, int], metrics: ClassifierMetrics
) -> None:
    """Commit before a rebalance takes the partitions: one attempt, so a broker outage cannot hold
    the rebalance; if it fails, the new owner reprocesses from the last commit (same event ids)."""
    try:
        await consumer.commit(positions)
    except KafkaError as exc:
        metrics.commit_failures.inc()
        log.warning(
            "could not commit before the partitions were revoked (%s); their new owner reprocesses", exc
        )


def _observe(metrics: ClassifierMetrics, out: BatchOutput) -> None:
    metrics.consumed.inc(out.consumed)
    for intent, count in out.intents.items():
        metrics.classified.labels(intent.value).inc(count)
    for reason, count in out.reviews_by_reason.items():
        metrics.reviews.labels(reason).inc(count)
    for channel, count in out.uncanonical.items():
        metrics.uncanonical.labels(channel).inc(count)
    for code, count in out.dead_by_code.items():
        metrics.dead_lettered.labels(code.value).inc(count)
    if out.dead_by_code:
        log_dead_letters(log, out.dead_by_code, "inbound records")
    if out.changes:
        metrics.changes.inc(len(out.changes))
    if out.replies:
        metrics.replies.inc(len(out.replies))
    for intent, count in out.suppressed.items():
        metrics.replies_suppressed.labels(intent.value).inc(count)
    now = time.time()
    for received in out.newest_received.values():
        metrics.delay.observe(max(0.0, now - received))


def _observe_batch(metrics: ClassifierMetrics, consumed: int, started: float) -> None:
    metrics.batch_records.observe(consumed)
    metrics.batch_duration.observe(time.monotonic() - started)
