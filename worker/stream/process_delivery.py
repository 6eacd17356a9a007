"""Exactly-once with one transactional producer per classifier process (KIP-447), on brokers that
have TxnOffsetCommit v3 and OffsetFetch v7 (Apache Kafka 2.5 and later; :mod:`worker.stream.group_txn`).

One transaction per cycle holds the output of every partition the process owns, and their offsets,
where :class:`worker.stream.delivery.PartitionProducers` runs one per partition. Measured on 2 cores,
Apache Kafka with a warm JVM, campaign mix at 20,000 MO/s (``python -m bench.latency --broker
kafka``), against a transaction per partition: see the README's latency rows (stop 37).

Why it is as safe as a producer per partition:

- **A zombie cannot commit.** The offsets go to the group coordinator with this member's generation
  and id (TxnOffsetCommit v3). A classifier that a rebalance left behind is refused
  (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID): its transaction aborts, its output is never visible, and
  its partitions wait, paused, for its next assignment. Before a rebalance takes partitions from a
  live classifier, the loop commits (or drops) what it classified first.
- **A new owner never redoes a committed batch.** It reads each partition's offset with
  ``require_stable`` (OffsetFetch v7): while a transaction holding an offset of the partition is
  still completing, the coordinator says so instead of answering the previous offset, and the
  owner asks again.
- **A failed transaction is settled before it is retried.** The producer is started afresh with
  the same transactional id, whose initialization aborts the open transaction (or completes it if
  its commit got through); the partitions' stable offsets then say which.

The transactional id is the group's and a random suffix, new per process, so no two classifiers
ever share one. A classifier killed with a transaction open leaves it to the transaction
coordinator, which aborts it once :data:`TRANSACTION_TIMEOUT_MS` has passed (Kafka Streams' choice
for the same layout; the coordinator looks every 10 s, so 10-20 s): until then read_committed
readers of the partitions it wrote see nothing after its first record, and the new owner of its
input partitions may wait too. Nothing is lost (``test_exactly_once_through_kill_9``). A clean
stop (SIGTERM) commits first and leaves nothing open.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from worker.backoff import Backoff
from worker.config import Settings
from worker.stream.delivery import STEP_SECONDS, TransactionalOutput
from worker.stream.group_txn import GROUP_FENCED, bind_group, fetch_stable, group_member

#: How long the transaction coordinator keeps a silent producer's transaction open before aborting
#: it: the longest a killed classifier holds up the readers of its output and its partitions' new
#: owner. A transaction that takes longer is aborted and redone (each takes milliseconds).
TRANSACTION_TIMEOUT_MS = 10_000


class ProcessProducer(TransactionalOutput):
    """One transactional producer for every partition this classifier owns."""

    FENCED = GROUP_FENCED

    def __init__(self, settings: Settings, consumer: Any, log: logging.Logger) -> None:
        super().__init__(settings, consumer, log)
        self.producer: AIOKafkaProducer | None = None
        self.transactional_id = f"{settings.group_id}-{uuid.uuid4().hex[:16]}"
        """This process's, the same for each restart of its producer."""

    async def take_over(self, partitions: set[TopicPartition], backoff: Backoff, stop: asyncio.Event) -> bool:
        if self.producer is None and not await self._restart(partitions, backoff, stop):
            return False
        owned = partitions & self.consumer.assignment()
        assert self.producer is not None
        self.producers = dict.fromkeys(owned, self.producer)
        committed = await self._committed(owned, backoff, stop)
        if committed is None:
            return False
        await self._seek(committed)
        return True

    async def close(self, partitions: set[TopicPartition] | None = None) -> None:
        if partitions is not None:
            for tp in partitions:
                self.producers.pop(tp, None)
            return
        self.producers = {}
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await self._stop(producer)

    async def _restart(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> bool:
        if self.producer is not None:
            await self._stop(self.producer)
            self.producer = None
        producer = await self._start(
            self.transactional_id, backoff, stop, transaction_timeout_ms=TRANSACTION_TIMEOUT_MS
        )
        if producer is None:
            return False
        bind_group(producer, group_member(self.consumer))
        self.producer = producer
        self.producers = dict.fromkeys(self.producers, producer)
        return True

    async def _committed(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> dict[TopicPartition, int] | None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(STEP_SECONDS):
                    found = await fetch_stable(self.consumer, self.settings.group_id, partitions, stop)
            except (KafkaError, TimeoutError, OSError) as exc:
                await backoff.failed(exc)
                continue
            if found is None:
                return None
            backoff.succeeded()
            return {tp: -1 if offset is None else offset for tp, offset in found.items()}
        return None

    async def _fenced(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> None:
        """The group moved on: the open transaction is aborted by restarting the producer (its
        state after a refused offset commit allows nothing else), and the partitions are dropped
        until the next assignment."""
        for tp in partitions:
            self.producers.pop(tp, None)
        await self._restart((), backoff, stop)
