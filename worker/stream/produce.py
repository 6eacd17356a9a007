"""Producing a batch's output as whole record batches: one ``BatchBuilder`` per partition.

aiokafka's ``send()`` costs a coroutine, a partitioner call and a future per record; measured on
the dev box, that caps a producer near 60,000 records/s, while appending the same records to one
``BatchBuilder`` per partition and handing each to ``send_batch()`` reaches about 530,000. This
module does the latter and keeps what ``send()`` guaranteed:

* the partition of a keyed record is Kafka's default: ``murmur2(key) & 0x7fffffff % partitions``
  (:mod:`worker.stream.partition`), so a key lands where a Java client would put it, and every
  record of one key goes to one partition, in the order given (compaction keeps the last);
* a record the producer could never send (larger than ``max_request_size``) raises the same
  :class:`MessageSizeTooLargeError` as ``send()``;
* the builders are the producer's own (``create_batch()``: its batch size, compression and
  transactional flag), so a batch that fills up is sent and the rest goes to a new one.

Records without a key (dead letters of key-less records) all go to one partition per topic and
call, chosen at random, like Kafka's sticky partitioner does for a batch.

Where the C extension is built and the producer does not compress, the grouping, the framing of
every record and the batch header are done in C instead (:mod:`worker.stream.encoded`), byte for
byte the batches aiokafka's builder writes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from worker.stream.encoded import OwnBatches, c_batch_size, encode
from worker.stream.partition import partition_for

Record = tuple[str, bytes | None, bytes]
Run = tuple[str, Sequence[tuple[bytes | None, bytes]]]
"""A topic and (key, value) records of it, in order."""


class ByTopic(Sequence[Record]):
    """Records held as runs per topic, as the classifier's batch step fills them (changes, replies,
    dead letters, reviews): read as (topic, key, value) records like any other sequence, and handed
    to the C encoder as they are. Why: building a tuple per record for a STOP storm's 320,000
    records a run was 3% of the classifier's busy time (py-spy)."""

    __slots__ = ("runs",)

    def __init__(self, runs: Iterable[Run]) -> None:
        self.runs = [(topic, records) for topic, records in runs if records]

    def __len__(self) -> int:
        return sum(len(records) for _, records in self.runs)

    def __iter__(self) -> Iterator[Record]:
        for topic, records in self.runs:
            for key, value in records:
                yield topic, key, value

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        return list(self)[index]  # not on the hot path: the C encoder reads the runs


def runs_of(records: Sequence[Record]) -> list[Run]:
    """``records`` as runs: one per stretch of consecutive records of one topic, in order."""
    if isinstance(records, ByTopic):
        return records.runs
    runs: list[Run] = []
    current: list[tuple[bytes | None, bytes]] = []
    topic: str | None = None
    for record_topic, key, value in records:
        if record_topic != topic:
            current = []
            runs.append((record_topic, current))
            topic = record_topic
        current.append((key, value))
    return runs


#: Below this many key + value bytes a record surely fits any request (the record and batch
#: headers add well under 512 bytes), so the exact size estimate runs only for big records.
_HEADROOM = 512


def group_by_partition(
    records: Sequence[Record],
    partitions: dict[str, int],
    choose: Callable[[bytes, int], int] = partition_for,
    keyless: dict[str, int] | None = None,
) -> dict[tuple[str, int], list[tuple[bytes | None, bytes]]]:
    """``records`` grouped by (topic, partition), each group in input order (pure).

    ``partitions`` is every topic's partition count; ``keyless`` the partition per topic for
    records without a key (default: partition 0).
    """
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
    for topic, key, value in records:
        if key is None:
            partition = keyless.get(topic, 0) if keyless else 0
        else:
            partition = choose(key, partitions[topic])
        group = groups.get((topic, partition))
        if group is None:
            group = groups[(topic, partition)] = []
        group.append((key, value))
    return groups


Failure = tuple[str, KafkaError]
"""The first record's topic whose output failed, and how."""


@dataclass(slots=True)
class Handed:
    """A set of records handed to the producer: the futures of their batches' acknowledgements,
    or the failure that stopped the hand-over (everything handed before it is still awaited)."""

    futures: list[tuple[str, asyncio.Future[Any]]] = field(default_factory=list)
    failure: Failure | None = None
    feeding: asyncio.Future[Any] | None = None
    """Handing over the rest of each partition's batches (:func:`_feed`), while the caller goes on."""

    def abandon(self) -> None:
        """Hand nothing more over: the output is dropped (an error left the loop), so its further
        batches must not follow the ones already queued."""
        if self.feeding is not None and not self.feeding.done():
            self.feeding.cancel()


async def send_batches(
    producer: AIOKafkaProducer, records: Sequence[Record], own: OwnBatches | None = None
) -> Failure | None:
    """Send ``records`` as per-partition batches and wait for every acknowledgement.

    Returns the first failure (with its topic) or None. Batches handed over before a failure are
    still awaited, never orphaned; the caller resends everything on a retriable failure.
    """
    return await acknowledged(await hand_over(producer, records, own))


async def hand_over(
    producer: AIOKafkaProducer, records: Sequence[Record], own: OwnBatches | None = None
) -> Handed:
    """Append ``records`` to per-partition batches and hand each to the producer, without waiting
    for the broker: :func:`acknowledged` does. The classifier hands a batch's output over, then
    classifies the next batch while the broker stores it (see :mod:`worker.stream.classifier`).
    Each partition's first batch is queued before this returns, the others by :func:`_feed`.
    ``own``: where the batches built in C note their identity when the producer has no id."""
    handed = Handed()
    futures = handed.futures
    rest: list[tuple[str, int, list[Any]]] = []  # a partition's batches after its first one
    topic = ""
    try:
        partitions: dict[str, int] = {}
        keyless: dict[str, int] = {}
        runs = runs_of(records)
        for topic in {topic for topic, _ in runs}:
            # Waits for the topic's metadata, as send() does.
            count = len(await producer.partitions_for(topic))
            partitions[topic] = count
            keyless[topic] = random.randrange(count)
        transactional = _transactional(producer)
        handed.failure, groups = _grouped(producer, records, runs, partitions, keyless, transactional, own)
        if handed.failure is not None:
            return handed
        for (topic, partition), builders in groups.items():
            if transactional:
                # send() registers each partition it writes to in the open transaction. For
                # send_batch() that is not part of aiokafka's contract (0.14 happens to do it inside
                # MessageAccumulator._append_batch, an internal detail), and a partition the
                # transaction does not know cannot be written in it: the broker refuses the
                # produce, or an older one lets the batch fall outside the transaction. So register
                # it here, before its first batch; a second registration is a no-op (a set).
                # Only for a producer with a transactional_id (exactly-once mode, issue 9).
                producer._txn_manager.maybe_add_partition_to_txn(TopicPartition(topic, partition))
            futures.append((topic, await producer.send_batch(builders[0], topic, partition=partition)))
            if len(builders) > 1:
                rest.append((topic, partition, builders[1:]))
    except KafkaError as exc:  # raised before sending: too large for the client, no metadata
        handed.failure = (topic, exc)
    if rest and handed.failure is None:  # after a failure everything is resent anyway
        handed.feeding = asyncio.ensure_future(_feed(producer, rest, handed))
    return handed


def _grouped(
    producer: AIOKafkaProducer,
    records: Sequence[Record],
    runs: list[Run],
    partitions: dict[str, int],
    keyless: dict[str, int],
    transactional: bool,
    own: OwnBatches | None,
) -> tuple[Failure | None, dict[tuple[str, int], list[Any]]]:
    """``records``' batches per (topic, partition), each partition's in order: built in C where
    that can be (:func:`c_batch_size`), else appended to the producer's own builders.
    A record too large for any request fails it all, before anything is built."""
    batch_size = c_batch_size(producer)
    if batch_size is None:
        failure = _too_large(producer, records)
        if failure is not None:
            return failure, {}
        return None, {
            where: _builders(producer, group)
            for where, group in group_by_partition(records, partitions, keyless=keyless).items()
        }
    encoded = encode(runs, partitions, keyless, batch_size, producer._max_request_size, transactional, own)
    if isinstance(encoded, int):  # a record no request can hold (by its index): which, and why
        return _too_large(producer, records), {}
    return None, encoded


def _builders(producer: AIOKafkaProducer, group: list[tuple[bytes | None, bytes]]) -> list[Any]:
    """One partition's records appended to the producer's builders (a new one when full)."""
    batch = producer.create_batch()
    builders = [batch]
    for key, value in group:
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: a new one
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # fits an empty batch
            builders.append(batch)
    return builders


async def _feed(producer: AIOKafkaProducer, rest: list[tuple[str, int, list[Any]]], handed: Handed) -> None:
    """Hand over each partition's further batches, in order. aiokafka queues one batch per
    partition and takes the next only once the sender has drained the last into a request, so in
    a STOP storm (several 256 KB batches per partition and classifier batch) hand_over() waited for
    produce round trips: about half the run (55-70 of 115-130 ms per batch). Here that wait is the
    delivery's (:func:`acknowledged` awaits it), and the classifier goes on with the next batch."""

    async def partition(topic: str, number: int, builders: list[Any]) -> None:
        for builder in builders:
            try:
                handed.futures.append((topic, await producer.send_batch(builder, topic, partition=number)))
            except KafkaError as exc:  # not handed over, nor the batches after it
                handed.failure = handed.failure or (topic, exc)
                return

    await asyncio.gather(*(partition(topic, number, builders) for topic, number, builders in rest))


async def acknowledged(handed: Handed) -> Failure | None:
    """Wait for every acknowledgement of what :func:`hand_over` handed over: the first failure
    (the hand-over's own first), or None when the broker stored it all."""
    if handed.feeding is not None:
        await handed.feeding
    results = await asyncio.gather(*(future for _, future in handed.futures), return_exceptions=True)
    if handed.failure is not None:
        return handed.failure
    for (topic, _), result in zip(handed.futures, results, strict=True):
        if isinstance(result, KafkaError):
            return topic, result
        if isinstance(result, BaseException):
            raise result
    return None


def producer_ids(producers: Iterable[AIOKafkaProducer]) -> Iterator[tuple[int, int]]:
    """The producer id and epoch of each of ``producers`` that has one (idempotent or
    transactional, once the broker gave it): what every record batch it writes carries."""
    for producer in producers:
        manager = producer._txn_manager
        if manager is not None and manager.has_pid():
            yield manager.producer_id, manager.producer_epoch


def _transactional(producer: AIOKafkaProducer) -> bool:
    manager = producer._txn_manager
    return manager is not None and manager.transactional_id is not None


def _too_large(producer: AIOKafkaProducer, records: Sequence[Record]) -> Failure | None:
    """What ``send()`` raises for a record larger than the producer's request limit, with its
    topic; None when every record fits. Checked before anything is sent."""
    limit: int = producer._max_request_size
    for topic, key, value in records:
        if len(value) + (len(key) if key else 0) + _HEADROOM > limit:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            if size > limit:
                return topic, MessageSizeTooLargeError(
                    f"The message is {size} bytes when serialized which is larger than the "
                    "maximum request size you have configured with the max_request_size "
                    "configuration"
                )
    return None
