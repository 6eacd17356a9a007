"""The classifier's tail of the change topic: what :mod:`worker.classify.confirmations` remembers.

A plain assigned consumer (no group, no commits, ``read_committed`` like every reader of the
classifier's output), started at the offsets of about two confirmation windows ago
(``offsets_for_times``: Apache Kafka answers it; Tansu answers offset 0, so there the whole
compacted topic is read, which is slower but just as right: reading earlier than needed never
loses a change), applying every change event to :class:`RecentChanges` in the background.

The classifier waits for the tail to be current (:meth:`RecentTail.catch_up`: everything on the
topic when it was called applied) before its first batch and before the first batch after each
rebalance, so a repeated STOP processed right after a restart or a partition move sees the block
the previous owner emitted. A tail that cannot catch up within a bounded time logs one line and
the classifier goes on: the cost is a possible second confirmation, never a lost block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from worker.classify.confirmations import RecentChanges
from worker.config import Settings
from worker.heartbeat import HEARTBEAT
from worker.sender.pace import CATCHING_UP, FetchPace, set_fetch_pace
from worker.sender.view import advance_past_markers, topic_partitions
from worker.stream.kafka import make_consumer
from worker.stream.records import RawPassingOver

log = logging.getLogger("optout.classifier")

#: Longest wait for the tail to be current before a batch (at start, after a rebalance).
CATCH_UP_SECONDS = 60.0
#: Longest attempt to connect to the change topic and position on it, before trying again.
_OPEN_SECONDS = 30.0
#: Once current: 100 ms fetch waits, aiokafka's 200 ms idle. While a catch-up is due or running
#: (from the start, and from each assignment, until it is done) the tail fetches at
#: :data:`~worker.sender.pace.CATCHING_UP` instead: with 100 ms waits every start and rebalance
#: paused the batch loop about 180 ms (a fifth of a 200,000-MO normal-mix run, ``python -m
#: bench.peers``), with the short pace about 20 ms (8 of 8 starts).
_QUIET = FetchPace(wait_ms=100, idle_seconds=0.2)
#: The tail consumer's fetches, as built (a catch-up is due at the start): they wait for 64 KB (or,
#: once current, 100 ms), not for the first new byte. The batch step merges our own changes into the
#: memory itself; the tail is for other writers' (an operator, an import, another classifier). With
#: a fetch answered at every byte, the tail sent a fetch for every batch we produced, and its
#: responses interleaved with the batch loop on the one event loop: on Apache Kafka at 20,000 MO/s,
#: MO -> change event p50 8.7 / p99 49.9 ms with the default fetch, 5.2 / 33.2 ms with this one
#: (``python -m bench.latency --broker kafka --delivery at-least-once``, 60 s, both with the 100 ms
#: commit interval). The quiet wait stays 100 ms: catch_up() waits for two fetch responses, and at
#: 500 ms (tried) every start and rebalance took a second.
_TAIL_FETCH = {
    "fetch_min_bytes": 64 * 1024,
    "fetch_max_wait_ms": CATCHING_UP.wait_ms,
    "consumer_timeout_ms": int(CATCHING_UP.idle_seconds * 1000),
}


def _failure(attempt: asyncio.Future[Any]) -> str:
    """Why an attempt to open the tail failed, in one line (the kind first, for the warning's dedup)."""
    if attempt.cancelled():
        return "TimeoutError: no answer from Kafka"
    exc = attempt.exception()
    if exc is None:
        return ""
    if isinstance(exc, TimeoutError):  # topic_partitions: the topic is not (yet) there
        return f"TimeoutError: {exc or 'no answer from Kafka'} (run `optout topics`?)"
    return f"{type(exc).__name__}: {exc}"


class RecentTail:
    """Use :meth:`open`; :attr:`recent` is read by the batch step between awaits."""

    def __init__(self, consumer: Any, recent: RecentChanges, positions: dict[TopicPartition, int]) -> None:
        self.recent = recent
        self._consumer = consumer
        self._positions = positions
        self._task: asyncio.Task[None] | None = None
        self.needs_catch_up = False
        """Set at start and by every assignment (:meth:`expect_catch_up`): catch up before
        classifying the next batch."""
        self.expect_catch_up()

    def expect_catch_up(self) -> None:
        """A catch-up is due before the next batch (start, a new assignment): fetch at the short
        wait from now on, so the fetch in flight when it is called returns soon too."""
        self.needs_catch_up = True
        set_fetch_pace(self._consumer, CATCHING_UP)

    @classmethod
    async def open(
        cls, settings: Settings, stop: asyncio.Event, own: RawPassingOver | None = None
    ) -> RecentTail | None:
        """Start tailing ``settings.topic_changes``; None if ``stop`` was set first. ``own``: the
        classifier's producers, whose batches the tail passes over unread (the batch step merged
        their changes already).

        Each attempt (connect, find the partitions, seek) is bounded and raced against ``stop``:
        an unreachable or half-open broker, or a topic not created yet, is waited out like any
        outage (one warning line per kind of failure), and SIGTERM still stops the classifier.
        """
        warned: set[str] = set()
        while not stop.is_set():
            marker = {} if own is None else {"value_deserializer": own}
            consumer = make_consumer(settings, None, raw_records=True, **_TAIL_FETCH, **marker)
            attempt = asyncio.ensure_future(cls._position(consumer, settings))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {attempt, stopping}, timeout=_OPEN_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            stopping.cancel()
            if attempt.done() and attempt.exception() is None:
                return cls(consumer, RecentChanges(settings.confirmation_window), attempt.result())._started()
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await attempt
            failure = _failure(attempt)
            with contextlib.suppress(Exception):
                await consumer.stop()
            if failure and failure.split(":")[0] not in warned:
                warned.add(failure.split(":")[0])
                log.warning(
                    "change topic tail (one confirmation per opt-out) not started: %s; retrying", failure
                )
            if not stop.is_set():
                await asyncio.sleep(1.0)
        return None

    @staticmethod
    async def _position(consumer: Any, settings: Settings) -> dict[TopicPartition, int]:
        """Connect, assign every partition of the change topic and seek to about two windows ago."""
        topic = settings.topic_changes
        await consumer.start()
        partitions = await topic_partitions(consumer, topic, _OPEN_SECONDS / 2)
        consumer.assign(partitions)
        since_ms = int((time.time() - 2 * settings.confirmation_window) * 1000)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        except KafkaError as exc:
            log.info("change topic tail: no offsets by time (%s); reading %s from the beginning", exc, topic)
            found = {}
        positions: dict[TopicPartition, int] = {}
        for tp in partitions:
            hit = found.get(tp)
            if tp not in found:
                await consumer.seek_to_beginning(tp)
            elif hit is None:  # nothing newer than the horizon
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)
            positions[tp] = await consumer.position(tp)
        return positions

    def _started(self) -> RecentTail:
        self._task = asyncio.create_task(self._run(), name="optout-change-tail")
        log.info(
            "one confirmation per opt-out within %d s (OPTOUT_CONFIRMATION_WINDOW): tailing %s from %s",
            self.recent.window // 1_000_000,
            next(iter(self._positions)).topic if self._positions else "-",
            ", ".join(f"[{tp.partition}] {o}" for tp, o in sorted(self._positions.items())),
        )
        return self

    async def catch_up(self, stop: asyncio.Event, seconds: float = CATCH_UP_SECONDS) -> bool:
        """Wait until every change on the topic when called has been applied; False after
        ``seconds`` (one log line) or when stopping.

        The high watermark comes from fetch responses (``end_offsets()`` is wrong on Tansu), so a
        fresh one needs a fetch *sent* after this call: wait for two more responses per partition
        (the first may have been in flight), then for the tail to reach the second one's
        watermark. The same algorithm as :meth:`worker.sender.BlocklistView.wait_current`.
        """
        self.needs_catch_up = False
        try:
            return await self._catch_up(stop, seconds)
        finally:
            if not self.needs_catch_up:  # no assignment came meanwhile: back to the quiet fetches
                set_fetch_pace(self._consumer, _QUIET)

    async def _catch_up(self, stop: asyncio.Event, seconds: float) -> bool:
        started = time.monotonic()
        consumer = self._consumer
        called_ms = time.time() * 1000
        seen: dict[TopicPartition, float] = {}
        targets: dict[TopicPartition, int] = {}
        while not stop.is_set():
            for tp in self._positions:
                polled = consumer.last_poll_timestamp(tp) if tp not in targets else None
                if polled is None:
                    continue
                if tp not in seen:
                    if polled > called_ms:
                        seen[tp] = polled
                elif polled > seen[tp]:
                    targets[tp] = _readable_end(consumer, tp)
            if len(targets) == len(self._positions) and all(
                self._positions[tp] >= end for tp, end in targets.items()
            ):
                return True
            if time.monotonic() - started > seconds:
                log.warning(
                    "change topic tail not current after %.0f s (%d changes known); going on: a repeated "
                    "opt-out until it is may be confirmed twice",
                    seconds, len(self.recent),
                )  # fmt: skip
                return False
            HEARTBEAT.tick()
            await asyncio.sleep(0.01)
        return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        consumer, apply, positions = self._consumer, self.recent.apply_record, self._positions
        failing = False
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            except KafkaError as exc:
                if not failing:
                    log.warning(
                        "change topic tail cannot fetch (repeated opt-outs may be confirmed): %s", exc
                    )
                failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("change topic tail fetching again")
                failing = False
            for tp, records in batch.items():
                for record in records:
                    apply(record.key, record.value, record.timestamp)
                positions[tp] = records[-1].offset + 1
            advance_past_markers(consumer, positions)  # else catch_up() waited 60 s per rebalance


def _readable_end(consumer: Any, tp: TopicPartition) -> int:
    """Where a read_committed reader of ``tp`` can get to now: the last stable offset. Not the high
    watermark: an open transaction (a classifier killed mid-batch, whose successor has not fenced
    it yet; that happens after this wait) holds the last stable offset below it until aborted, and
    catch_up() waited 60 s for records no read_committed reader can see. Its changes are aborted and
    produced again anyway. Where the broker gives none (read_uncommitted: -1; older brokers: None),
    the high watermark."""
    stable = consumer.last_stable_offset(tp)
    if stable is None or stable < 0:
        return int(consumer.highwater(tp) or 0)
    return int(stable)
