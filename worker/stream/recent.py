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
from worker.errors import ConfigError
from worker.heartbeat import HEARTBEAT
from worker.sender.view import topic_partitions
from worker.stream.kafka import make_consumer

log = logging.getLogger("optout.classifier")

#: Longest wait for the tail to be current before a batch (at start, after a rebalance).
CATCH_UP_SECONDS = 60.0


class RecentTail:
    """Use :meth:`open`; :attr:`recent` is read by the batch step between awaits."""

    def __init__(self, consumer: Any, recent: RecentChanges, positions: dict[TopicPartition, int]) -> None:
        self.recent = recent
        self._consumer = consumer
        self._positions = positions
        self._task: asyncio.Task[None] | None = None
        self.needs_catch_up = True
        """Set at start and by every assignment: catch up before classifying the next batch."""

    @classmethod
    async def open(cls, settings: Settings, stop: asyncio.Event) -> RecentTail | None:
        """Start tailing ``settings.topic_changes``; None if ``stop`` was set first. A missing
        topic is a configuration error (one line)."""
        topic = settings.topic_changes
        window = settings.confirmation_window
        consumer = make_consumer(settings, None)
        while True:
            if stop.is_set():
                await consumer.stop()
                return None
            try:
                await consumer.start()
                partitions = await topic_partitions(consumer, topic, 30.0)
                break
            except TimeoutError:
                await consumer.stop()
                raise ConfigError(
                    f"OPTOUT_TOPIC_CHANGES={topic} does not exist (run `optout topics`): the classifier "
                    "reads it for one confirmation per opt-out (OPTOUT_CONFIRMATION_WINDOW=0 turns that off)"
                ) from None
            except (KafkaError, OSError) as exc:
                await consumer.stop()
                log.warning("change topic tail: Kafka unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)
                consumer = make_consumer(settings, None)
        consumer.assign(partitions)
        since_ms = int((time.time() - 2 * window) * 1000)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        except (KafkaError, OSError) as exc:
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
        tail = cls(consumer, RecentChanges(window), positions)
        tail._task = asyncio.create_task(tail._run(), name="optout-change-tail")
        log.info(
            "one confirmation per opt-out within %d s (OPTOUT_CONFIRMATION_WINDOW): tailing %s from %s",
            window, topic, ", ".join(f"[{tp.partition}] {o}" for tp, o in sorted(positions.items())),
        )  # fmt: skip
        return tail

    async def catch_up(self, stop: asyncio.Event, seconds: float = CATCH_UP_SECONDS) -> bool:
        """Wait until every change on the topic when called has been applied; False after
        ``seconds`` (one log line) or when stopping.

        The high watermark comes from fetch responses (``end_offsets()`` is wrong on Tansu), so a
        fresh one needs a fetch *sent* after this call: wait for two more responses per partition
        (the first may have been in flight), then for the tail to reach the second one's
        watermark. The same algorithm as :meth:`worker.sender.BlocklistView.wait_current`.
        """
        self.needs_catch_up = False
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
                    targets[tp] = consumer.highwater(tp) or 0
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
