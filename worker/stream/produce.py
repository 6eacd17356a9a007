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

Where the C extension is built (``worker/stream/_batches.c``) and the producer does not compress,
the grouping, the framing of every record and the batch header are done in C instead
(:class:`EncodedBatch`), byte for byte the batches aiokafka's builder writes
(``tests/unit/stream/test_produce.py`` compares them). Why: a STOP storm hands over 320,000 records
a run; per record in Python (partition, ``BatchBuilder.append``, a size check) that was about 12%
of the classifier's busy time (py-spy), and in process, 200,000 change events of 600 bytes took
0.9 µs each that way against 0.2-0.4 µs in C, the header's CRC-32C included.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from worker.stream.partition import partition_for

encode_batches: Callable[..., dict[tuple[str, int], list[tuple[bytearray, int]]] | int] | None
_finish: Callable[..., int] | None
try:
    from worker.stream._batches import encode as encode_batches
    from worker.stream._batches import finish as _finish
except ImportError:  # no C compiler at install time: aiokafka's BatchBuilder
    encode_batches = _finish = None

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
#: The attributes bit of a transactional batch (Kafka's RecordBatch.TRANSACTIONAL_FLAG_MASK).
_TRANSACTIONAL = 0x10


class OwnBatches:
    """The identities of the last record batches a producer wrote without a producer id: on a broker
    that has no idempotent producer (Tansu) the classifier's change tail passes its own batches over
    by these (:class:`worker.stream.records.RawPassingOver`), as it does by producer id elsewhere.

    A batch's identity is its CRC-32C, first timestamp and record count: another producer's batch
    matches one of the last ``keep`` only by a 32-bit CRC collision at the same millisecond with
    the same count. ``keep`` bounds the memory; a tail further behind than that reads our batches
    as it did before (slower, not wrong: the records are merged already and kept once)."""

    __slots__ = ("_keep", "_seen")

    def __init__(self, keep: int = 8192) -> None:
        self._keep = keep
        self._seen: dict[tuple[int, int, int], None] = {}

    def add(self, crc: int, first_timestamp: int, count: int) -> None:
        seen = self._seen
        seen[(crc, first_timestamp, count)] = None
        if len(seen) > self._keep:
            del seen[next(iter(seen))]  # the oldest: dicts keep insertion order

    def __contains__(self, identity: object) -> bool:
        return identity in self._seen

    def __len__(self) -> int:
        return len(self._seen)


class EncodedBatch:
    """A record batch built in C, in the shape aiokafka's accumulator takes from its ``BatchBuilder``
    (``send_batch()``): closed, its records framed already, its header written when the sender
    drains it (:meth:`_build`: an idempotent producer sets its id and sequence just before)."""

    __slots__ = ("_attributes", "_batch", "_built", "_count", "_own", "_state", "_timestamp")

    def __init__(
        self, batch: bytearray, count: int, timestamp_ms: int, transactional: bool, own: OwnBatches | None
    ) -> None:
        self._batch = batch
        self._count = count
        self._timestamp = timestamp_ms
        self._attributes = _TRANSACTIONAL if transactional else 0
        self._state = (-1, -1, 0)  # producer id, epoch, base sequence: none, as aiokafka writes it
        self._built = False
        self._own = own

    def _set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int) -> None:
        self._state = (producer_id, producer_epoch, base_sequence)

    def _build(self) -> bytearray:
        if not self._built:  # once: a retry resends the same bytes
            assert _finish is not None
            crc = _finish(self._batch, self._count, self._timestamp, self._attributes, *self._state)
            self._built = True
            if self._own is not None and self._state[0] < 0:
                self._own.add(crc, self._timestamp, self._count)
        return self._batch

    def size(self) -> int:
        return len(self._batch)

    def record_count(self) -> int:
        return self._count

    def closed(self) -> bool:
        return True

    def close(self) -> None:
        """Closed from the start: nothing is appended to a batch built whole."""

    def append(self, **_: Any) -> None:
        """Full: aiokafka's ``send()`` never adds to a closed batch, and this one is always closed."""


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
        handed.failure, groups = _grouped(producer, records, runs, partitions, keyless, own)
        if handed.failure is not None:
            return handed
        transactional = _transactional(producer)
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
    own: OwnBatches | None,
) -> tuple[Failure | None, dict[tuple[str, int], list[Any]]]:
    """``records``' batches per (topic, partition), each partition's in order: built in C where
    that can be (:func:`c_batch_size`), else appended to the producer's own builders.
    A record too large for any request fails it all, before anything is built."""
    batch_size = c_batch_size(producer)
    if batch_size is None or encode_batches is None:
        failure = _too_large(producer, records)
        if failure is not None:
            return failure, {}
        return None, {
            where: _builders(producer, group)
            for where, group in group_by_partition(records, partitions, keyless=keyless).items()
        }
    encoded = encode_batches(runs, partitions, keyless, batch_size, producer._max_request_size)
    if isinstance(encoded, int):  # a record no request can hold (by its index): which, and why
        return _too_large(producer, records), {}
    timestamp = int(time.time() * 1000)  # one per hand-over; aiokafka's builder stamps each record
    transactional = _transactional(producer)
    return None, {
        where: [EncodedBatch(batch, count, timestamp, transactional, own) for batch, count in batches]
        for where, batches in encoded.items()
    }


def c_batch_size(producer: AIOKafkaProducer) -> int | None:
    """The producer's batch size when its batches may be built in C: the extension is built and the
    producer does not compress (compression stays aiokafka's). None: aiokafka's builder."""
    accumulator = getattr(producer, "_message_accumulator", None)
    if encode_batches is None or accumulator is None or getattr(accumulator, "_compression_type", 1) != 0:
        return None
    size = getattr(accumulator, "_batch_size", None)
    return size if isinstance(size, int) else None


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
