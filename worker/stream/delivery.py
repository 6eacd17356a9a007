"""Exactly-once classification on brokers with transactions, and its first layout: one
transactional producer per input partition (:class:`PartitionProducers`). The second, one producer
per process, needs two requests aiokafka lacks and that this project adds
(:mod:`worker.stream.process_delivery`); ``OPTOUT_TRANSACTIONS=auto`` picks it where the broker has
them (:func:`transaction_layout`), this one elsewhere. Both share :class:`TransactionalOutput`.

What "exactly once" means here: for every inbound record, the change events, reply request or dead
letter derived from it appear on the output topics exactly once **to read_committed consumers**
(the projector, the send services' view), whatever crashes, restarts and rebalances happen. The
output of a batch and the input offset after it are committed in one Kafka transaction
(``send_offsets_to_transaction``), so either both are visible or neither is.

Why one producer per input partition (``transactional.id = <group>-<topic>-<partition>``) is safe
with aiokafka's own requests, where one per process, as KIP-447 allows, is not: aiokafka 0.14 has
neither half of KIP-447 (:mod:`worker.stream.group_txn` adds both).

- Its TxnOffsetCommit carries no group generation, so a producer cannot be fenced by the group
  coordinator: a classifier that lost a partition in a rebalance but is still working on a batch
  of it (a "zombie") could commit that batch's output and offsets after the new owner started on
  the same records. With a transactional id per partition, the new owner's ``init_transactions()``
  (InitProducerId) bumps that id's epoch: the zombie's next transactional request is refused
  (``ProducerFenced``) and its open transaction is aborted.
- Its OffsetFetch stops at v3, so it cannot ask for *stable* offsets (``require_stable``): right
  after ``commit_transaction()`` returns, the transaction's markers are still being written and a
  plain OffsetFetch answers the previous offset (measured: 20-45 ms on Kafka 4.4). A new owner
  reading that would reprocess a committed batch. InitProducerId, though, does not return while
  the id's previous transaction is still completing (the broker answers CONCURRENT_TRANSACTIONS and
  the client retries): so the owner of a partition first initializes that partition's producer,
  and only then reads the partition's committed offset, which is by then final.

So on every assignment (aiokafka rebalances eagerly: every assignment is new) the loop, between
batches (what it classified before committed first,
:meth:`~worker.stream.cycles.TransactionCycles.settled`): closes the
producers of the partitions it had; starts a new producer per assigned partition (fencing any
zombie, completing or aborting its transaction); reads each partition's committed offset and seeks
there; drops whatever was fetched before the seek. aiokafka fetches committed offsets itself when
the assignment arrives, *before* the rebalance listener runs, which is why the seek is needed. A
transaction that fails on a broker error is retried with a fresh producer (whose initialization
aborts or completes the failed one) after re-reading the committed offset: a batch whose commit got
through although its answer was lost is not produced again. A fenced producer means the partition
has a new owner: its output is dropped (aborted, never visible) and the partition paused until the
next assignment.

Each partition's output goes into that partition's transactions, one after another, the partitions
independent of each other (:class:`worker.stream.cycles.TransactionCycles`): the loop classifies what
it fetched and goes on fetching; what it classified of a partition whose transaction is still
committing is queued, and the whole queue goes into that partition's next transaction. A record then
waits for at most its own partition's transaction in flight, then its own. Before, each batch was
one transaction per partition, run together: the batch waited for the slowest of them, and the loop
waited for the batch's commit before fetching again (fetched early, the records arriving meanwhile
were split into two batches, one of them a cycle late). Apache Kafka, 2 cores, ``python -m
bench.latency --broker kafka`` (campaign mix, 20,000 MO/s), three alternated rounds: MO -> change
event appended p50 / p90 35.1-36.1 / 60.0-68.2 ms before, 30.2-32.9 / 54.7-59.2 ms with these cycles
(and 25.4-30.4 / 45.3-51.0 with AddPartitionsToTxn asked again after 2 ms instead of 20 when
its partition's last markers are still being written; now :mod:`worker.stream.txn_retry`).
Behind, at most a batch's worth waits, all partitions together
(:meth:`~worker.stream.cycles.TransactionCycles.room`).

The cost is a transaction per partition per cycle (AddPartitionsToTxn, AddOffsetsToTxn,
TxnOffsetCommit, EndTxn and the markers) and a producer, with its connections, per assigned
partition; see the README's delivery section for the measured throughput of both modes.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from worker.backoff import Backoff
from worker.config import Settings
from worker.errors import ConfigError, OutputRefusedError
from worker.stream import txn_retry
from worker.stream.group_txn import GROUP_FENCED
from worker.stream.kafka import BrokerFeatures, make_producer
from worker.stream.loop import REFUSED_FOR_GOOD, REFUSED_HINT
from worker.stream.produce import send_batches

EXACTLY_ONCE = "exactly-once"
AT_LEAST_ONCE = "at-least-once"
PER_PROCESS = "per-process"
PER_PARTITION = "per-partition"

#: Longest wait for one transactional step; a hung broker connection must not hang the loop.
STEP_SECONDS = 60.0

Records = Sequence[tuple[str, bytes | None, bytes]]
Offsets = Mapping[TopicPartition, tuple[int, int]]
"""What one transaction commits: for each input partition, the offsets ``first`` .. ``after - 1``
whose output it holds (the offset committed is ``after``)."""


def transaction_layout(settings: Settings, features: BrokerFeatures) -> str:
    """``OPTOUT_TRANSACTIONS`` against what the broker has: a producer per process where it has
    KIP-447's requests (auto), else per partition; per-process on a broker without them is a
    configuration error, not a silent change."""
    if settings.transactions == PER_PROCESS and not features.group_fencing:
        raise ConfigError(
            f"OPTOUT_TRANSACTIONS=per-process, but the broker at {settings.kafka_bootstrap} lacks "
            "TxnOffsetCommit v3 or OffsetFetch v7 (KIP-447, Apache Kafka 2.5+); use auto or per-partition"
        )
    if settings.transactions == PER_PARTITION or not features.group_fencing:
        return PER_PARTITION
    return PER_PROCESS


def transactional_id(group_id: str, tp: TopicPartition) -> str:
    return f"{group_id}-{tp.topic}-{tp.partition}"


@dataclass(slots=True)
class Delivered:
    """What happened to one transaction's partitions."""

    committed: bool
    """Its output and offsets are committed (now, or by an earlier attempt whose answer was lost)."""
    fenced: bool = False
    """Another classifier owns the partitions now: the output was dropped (aborted)."""


class TransactionalOutput(abc.ABC):
    """The transactional producers of the partitions this classifier owns, and the transaction
    that commits a batch's output with its input offsets. Two layouts: one producer per input
    partition (:class:`PartitionProducers`, any broker with transactions) and one per process
    (:class:`worker.stream.process_delivery.ProcessProducer`, brokers with KIP-447)."""

    #: What ``send_offsets_to_transaction`` or the commit raise when another classifier owns the
    #: partitions now.
    FENCED: tuple[type[BaseException], ...] = ()

    def __init__(self, settings: Settings, consumer: Any, log: logging.Logger) -> None:
        self.settings = settings
        self.consumer = consumer
        self.log = log
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        """Each owned partition's producer (one shared by all in the per-process layout)."""
        quiet_fenced_futures(asyncio.get_running_loop())
        txn_retry.install()

    @abc.abstractmethod
    async def take_over(self, partitions: set[TopicPartition], backoff: Backoff, stop: asyncio.Event) -> bool:
        """Own ``partitions`` (the whole new assignment): their producers ready and every partition
        sought to its committed offset, final (no transaction of a previous owner still completing).
        False if stopped first."""

    @abc.abstractmethod
    async def close(self, partitions: set[TopicPartition] | None = None) -> None:
        """Stop the producers of ``partitions`` (all when None)."""

    @abc.abstractmethod
    async def _restart(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> bool:
        """A new producer for ``partitions`` with the same transactional id, whose
        initialization aborts the failed transaction (or completes it if its commit got through).
        False if stopped first."""

    @abc.abstractmethod
    async def _committed(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> dict[TopicPartition, int] | None:
        """The final committed offset of each of ``partitions`` (-1 when none), or None when stopped
        first."""

    @abc.abstractmethod
    async def _fenced(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> None:
        """``partitions`` belong to another classifier now: drop what this one holds of them."""

    async def deliver(
        self, offsets: Offsets, records: Records, backoff: Backoff, stop: asyncio.Event
    ) -> Delivered:
        """Produce ``records`` (derived from ``offsets``) and commit them with the offsets after
        them, in one transaction; retried until it is committed, fenced, or stopped (then it is left
        uncommitted: the next owner or run redoes it)."""
        group = self.settings.group_id
        while True:
            producer = self.producers.get(next(iter(offsets)))
            if producer is None:
                return Delivered(committed=False, fenced=True)
            try:
                async with asyncio.timeout(STEP_SECONDS):
                    await producer.begin_transaction()
                    failure = await send_batches(producer, records)  # whole batches, as in at-least-once
                    if failure is not None:
                        raise failure[1]
                    await producer.send_offsets_to_transaction(
                        {tp: after for tp, (_, after) in offsets.items()}, group
                    )
                    await producer.commit_transaction()
                backoff.succeeded()
                return Delivered(committed=True)
            except self.FENCED as exc:
                self.log.warning(
                    "%s: another classifier owns %s now; this transaction was aborted and its "
                    "batches are left to it",
                    type(exc).__name__, _names(offsets),
                )  # fmt: skip
                await self._fenced(offsets, backoff, stop)
                return Delivered(committed=False, fenced=True)
            except REFUSED_FOR_GOOD as exc:
                raise OutputRefusedError(
                    f"Kafka refused the output of {_names(offsets)} for good "
                    f"({type(exc).__name__}: {exc}); {REFUSED_HINT}"
                ) from None
            except (KafkaError, TimeoutError, OSError) as exc:
                if stop.is_set():
                    self.log.error("stopping with an uncommitted transaction; the batch will be redone")
                    return Delivered(committed=False)
                await backoff.failed(exc)
            if not await self._restart(offsets, backoff, stop):
                return Delivered(committed=False)
            committed = await self._committed(offsets, backoff, stop)
            if committed is None:
                return Delivered(committed=False)
            if all(committed[tp] >= after for tp, (_, after) in offsets.items()):
                return Delivered(committed=True)  # the commit got through; its answer was lost
            moved = {
                tp: committed[tp] for tp, (first, _) in offsets.items() if committed[tp] not in (-1, first)
            }
            if moved:  # moved by another owner meanwhile: follow it
                for tp, offset in moved.items():
                    self.consumer.seek(tp, offset)
                return Delivered(committed=False, fenced=True)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            async with asyncio.timeout(STEP_SECONDS):
                await producer.stop()

    async def _start(
        self, transactional_id: str, backoff: Backoff, stop: asyncio.Event, **options: Any
    ) -> AIOKafkaProducer | None:
        """A started transactional producer (InitProducerId: fences the id's previous producer and
        settles its last transaction), or None if stopped first."""
        while not stop.is_set():
            producer = make_producer(
                self.settings, transactional_id=transactional_id, enable_idempotence=True, **options
            )
            try:
                async with asyncio.timeout(STEP_SECONDS):
                    await producer.start()
                return producer
            except (KafkaError, TimeoutError, OSError) as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                await backoff.failed(exc)
        return None

    async def _seek(self, committed: Mapping[TopicPartition, int]) -> None:
        """Each partition to its committed offset (-1: none)."""
        for tp, offset in committed.items():
            if offset < 0:
                await self.consumer.seek_to_beginning(tp)  # a new group: the whole topic (earliest)
            else:
                self.consumer.seek(tp, offset)


class PartitionProducers(TransactionalOutput):
    """One transactional producer per input partition (``transactional.id =
    <group>-<topic>-<partition>``): the module docstring says why this is safe with aiokafka's own
    requests."""

    FENCED = (ProducerFenced,)

    async def take_over(self, partitions: set[TopicPartition], backoff: Backoff, stop: asyncio.Event) -> bool:
        await self.close(set(self.producers) - partitions)
        for tp in sorted(partitions, key=lambda tp: (tp.topic, tp.partition)):
            if tp not in self.consumer.assignment():
                continue  # another rebalance already took it away; the next assignment says so
            if not await self._restart({tp}, backoff, stop):
                return False
        committed = await self._committed(partitions & self.consumer.assignment(), backoff, stop)
        if committed is None:
            return False
        await self._seek(committed)
        return True

    async def close(self, partitions: set[TopicPartition] | None = None) -> None:
        for tp in list(self.producers if partitions is None else partitions):
            producer = self.producers.pop(tp, None)
            if producer is not None:
                await self._stop(producer)

    async def _restart(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> bool:
        (tp,) = partitions
        await self.close({tp})
        producer = await self._start(transactional_id(self.settings.group_id, tp), backoff, stop)
        if producer is None:
            return False
        self.producers[tp] = producer
        return True

    async def _committed(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> dict[TopicPartition, int] | None:
        found: dict[TopicPartition, int] = {}
        for tp in partitions:
            offset = await self._committed_offset(tp, backoff, stop)
            if offset is None:
                return None
            found[tp] = offset
        return found

    async def _fenced(
        self, partitions: Collection[TopicPartition], backoff: Backoff, stop: asyncio.Event
    ) -> None:
        await self.close(set(partitions))

    async def _committed_offset(
        self, tp: TopicPartition, backoff: Backoff, stop: asyncio.Event
    ) -> int | None:
        """``tp``'s committed offset (-1 when none; final once its producer is initialized), or None
        when stopped first."""
        while not stop.is_set():
            try:
                offset = await self.consumer.committed(tp)
                backoff.succeeded()
                return int(offset) if offset is not None else -1
            except KafkaError as exc:
                await backoff.failed(exc)
        return None


def _names(offsets: Offsets) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(offsets))


_NEVER_RETRIEVED = "Future exception was never retrieved"
_QUIETED = (ProducerFenced, *GROUP_FENCED)


def quiet_fenced_futures(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's "Future exception was never retrieved" reports of ``ProducerFenced`` and of
    the group's refusals of a transaction's offsets (:data:`worker.stream.group_txn.GROUP_FENCED`),
    once per loop; every other report goes to the handler that was there.

    A fenced producer, or a transaction whose offsets the group refused, leaves the error on
    internal aiokafka futures nobody awaits; :meth:`TransactionalOutput.deliver` has handled it
    (the batch dropped, the partitions left to their new owner). Reported, it is a
    traceback at an arbitrary moment (whenever the garbage collector frees the future), and on
    CPython 3.11.7 formatting that traceback there broke a later ``ast.parse`` in the same process
    ("SystemError: AST constructor recursion depth mismatch", seen at the end of a test run).
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_fenced", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _NEVER_RETRIEVED and isinstance(context.get("exception"), _QUIETED):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.quiets_fenced = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


Fenced = set[TopicPartition]
"""The partitions whose output was not committed because another classifier owns them."""
