"""Consumed records without a ``ConsumerRecord`` each: the record batches' own records, taken whole.

aiokafka's ``getmany()`` walks every record through a generator, two method calls and an
11-field ``ConsumerRecord`` dataclass built in Python; its record batches already hold a record
object of their own (C, from ``aiokafka.record._crecords``) with the offset, timestamp, key and
value, which is all the classifier reads. Measured on 5,000 records of 500-record batches (aiokafka
0.14, in process): 1.35 µs per record through ``getmany``'s path, 0.26-0.49 µs taking each
batch's records as a list. That is a third of what the whole consume costs per record, on every
record the classifier reads, inbound and on its change-topic tail.

Only consumers built with :data:`RAW` (or a :class:`RawPassingOver`) as their value deserializer
take this path (:func:`worker.stream.kafka.make_consumer` with ``raw_records=True``); their records
have no ``topic`` or ``partition`` (the partition is the key of the batch ``getmany()`` returns). Every
other consumer, and these too when :func:`install` finds aiokafka's internals other than it
expects, get ``ConsumerRecord`` objects as usual (the deserializer is the identity, so that path
is only slower, never wrong).

What is kept of ``PartitionRecords``: control batches are skipped, so are aborted transactions'
batches for read_committed consumers, records below the fetch position (a compressed message
set) too; the position moves to each batch's next offset once the batch is taken whole (a
compacted batch's gap), or past the last record returned when ``max_records`` cuts a batch.
``tests/unit/stream/test_records.py`` compares both paths on random batch layouts.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Container, Iterable
from typing import Any

from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.memory_records import MemoryRecords

crc32c: Callable[[Any], int] | None
try:
    from worker.stream._batches import crc32c
except ImportError:  # no C compiler at install time: aiokafka's own CRC check
    crc32c = None

log = logging.getLogger("optout.kafka")


class Raw:
    """The value deserializer that marks a consumer for the raw path (the identity): :data:`RAW`."""

    def __call__(self, value: bytes | None) -> bytes | None:
        return value


RAW = Raw()


class RawPassingOver(Raw):
    """:data:`RAW` for a consumer that passes over, unread, the record batches of the producers it
    is told of: the classifier's change-topic tail, which has merged the classifier's own changes
    already and is there for other writers' (an operator, an import, another classifier).

    A batch is the classifier's own when its producer id and epoch are one of ``producers()``: the
    idempotent producer (at-least-once on a broker that has one: Apache Kafka, MSK, Confluent,
    Redpanda) or the transactional producers of the partitions it owns (exactly-once). A batch
    without a producer id (a broker without idempotent producers: Tansu) is ours when its
    identity, ``(crc, first timestamp, record count)``, is in ``batches``: the ones the classifier
    built itself (:class:`worker.stream.encoded.OwnBatches`). Anything else is read.
    """

    def __init__(
        self,
        producers: Callable[[], Iterable[tuple[int, int]]],
        batches: Container[tuple[int, int, int]] | None = None,
    ) -> None:
        self.producers = producers
        self.batches = batches

    def passes_over(self, batch: Any) -> bool:
        producer_id: int = batch.producer_id
        if producer_id >= 0:
            return (producer_id, batch.producer_epoch) in self.producers()
        own = self.batches
        return own is not None and (batch.crc, batch.first_timestamp, batch.last_offset_delta + 1) in own


#: What the raw path reads of a ``PartitionRecords`` (checked per fetch, before anything is taken).
_STATE = frozenset(
    {"_tp", "_records", "_aborted_transactions", "_aborted_producers", "_value_deserializer",
     "_check_crcs", "_isolation_level", "next_fetch_offset", "_records_iterator"}
)  # fmt: skip
_METHODS = ("_consume_aborted_up_to", "_contains_abort_marker")
_RESULT_METHODS = ("getall", "check_assignment", "has_more", "_update_position")

_installed: Callable[..., list[Any]] | None = None


class KeptRecords(MemoryRecords):  # type: ignore[misc]
    """aiokafka's ``MemoryRecords`` that keeps the fetched bytes (``data``), so :func:`take` checks a
    batch's CRC-32C on them with the SSE 4.2 instruction (:mod:`worker.stream._batches`) instead of
    aiokafka's table-driven CRC: that check was 7.8% of the classifier's busy time on the normal
    mix (py-spy, ``records.py``'s CRC line) and 3% on the STOP storm. :func:`install` makes the
    fetcher build these; aiokafka reads them exactly as its own."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = data


def install() -> bool:
    """Route :data:`RAW` consumers' ``FetchResult.getall`` through :func:`take` (once per process).
    False, with one warning, when this aiokafka's fetcher is not the one this was written for."""
    global _installed
    if _installed is not None:
        return True
    result, partition = getattr(_fetcher, "FetchResult", None), getattr(_fetcher, "PartitionRecords", None)
    if (
        result is None
        or partition is None
        or not all(callable(getattr(result, name, None)) for name in _RESULT_METHODS)
        or not all(callable(getattr(partition, name, None)) for name in _METHODS)
        or getattr(_fetcher, "READ_COMMITTED", None) != 1
    ):
        log.warning("aiokafka's fetcher has changed: records are consumed the usual way (slower)")
        return False
    original = result.getall

    def getall(self: Any, max_records: int | None = None) -> list[Any]:
        records = self._partition_records
        if records is None or not isinstance(records._value_deserializer, Raw) or not _takeable(records):
            return original(self, max_records)  # type: ignore[no-any-return]
        if not self.check_assignment(self._topic_partition):
            return []
        taken, exhausted = take(records, max_records)
        self._update_position()
        if exhausted:
            self._partition_records = None
        return taken

    result.getall = getall
    if crc32c is not None and getattr(_fetcher, "MemoryRecords", None) is MemoryRecords:
        _fetcher.MemoryRecords = KeptRecords
    _installed = original
    return True


def _takeable(records: Any) -> bool:
    """Whether :func:`take` may read ``records``: the state it knows, and aiokafka's own record
    generator not started (it would hold a batch half read)."""
    return records.__dict__.keys() >= _STATE and (
        hasattr(records, "_optout_rest")
        or inspect.getgeneratorstate(records._records_iterator) == inspect.GEN_CREATED
    )


def take(records: Any, max_records: int | None) -> tuple[list[Any], bool]:
    """Up to ``max_records`` records of a ``PartitionRecords``, a batch at a time, and whether it
    is exhausted; ``records.next_fetch_offset`` is moved as aiokafka's generator moves it."""
    out: list[Any] = []
    room = sys.maxsize if max_records is None else max_records
    if not hasattr(records, "_optout_rest"):
        # aiokafka's generator, never started, refers back to ``records``: a cycle that held every
        # fetch response's buffer until a full collection (peak RSS 135 MB instead of 88 on the
        # normal mix). An empty iterator in its place ends its getone() too.
        records._records_iterator = iter(())
        records._optout_rest = None  # the rest of a batch that max_records cut, and its end
        records._optout_at = 0  # where the next batch starts in the fetched bytes (KeptRecords)
    while room:
        rest = records._optout_rest or _next_batch(records)
        if rest is None:
            return out, True
        taken, next_offset = rest
        if len(taken) < room:  # the whole batch, and room for more: past its end
            out.extend(taken)
            room -= len(taken)
            records.next_fetch_offset = next_offset
            records._optout_rest = None
        else:  # cut where max_records is reached (at the batch's end, too, as aiokafka cuts)
            out.extend(taken[:room])
            records.next_fetch_offset = taken[room - 1].offset + 1
            records._optout_rest = (taken[room:], next_offset)
            room = 0
    return out, False


def _next_batch(records: Any) -> tuple[list[Any], int] | None:
    """The next data batch's records at or past the fetch position, and its next offset; None at
    the end. Control batches and aborted transactions are skipped as ``_unpack_records`` does."""
    memory = records._records
    data = memory.data if type(memory) is KeptRecords else None
    while memory.has_next():
        batch = memory.next_batch()
        start = records._optout_at
        if data is not None:  # every batch is framed as offset (8 bytes), length (4), the rest
            records._optout_at = start + 12 + int.from_bytes(data[start + 8 : start + 12], "big")
        # Our own batches are passed over unread: their CRC is not computed either.
        own = not batch.is_control_batch and _passed_over(records, batch)
        if records._check_crcs and not own and not _crc_ok(batch, data, start, records._optout_at):
            raise CorruptRecordException(f"Invalid CRC - {records._tp}")
        if records._isolation_level == _fetcher.READ_COMMITTED and batch.producer_id is not None:
            records._consume_aborted_up_to(batch.base_offset)
            if batch.is_control_batch and records._contains_abort_marker(batch):
                records._aborted_producers.discard(batch.producer_id)
            if batch.is_transactional and batch.producer_id in records._aborted_producers:
                records.next_fetch_offset = batch.next_offset
                continue
        if batch.is_control_batch or own:
            records.next_fetch_offset = batch.next_offset
            continue
        taken = list(batch)
        position = records.next_fetch_offset
        if taken and taken[0].offset < position:  # a compressed message set read from its start
            taken = [record for record in taken if record.offset >= position]
        return taken, batch.next_offset
    return None


def _crc_ok(batch: Any, data: bytes | None, start: int, end: int) -> bool:
    """Whether ``batch`` (``data[start:end]`` when its bytes were kept) has the CRC it says: a v2
    batch's CRC-32C covers its bytes from the attributes (byte 21) on; older formats are aiokafka's."""
    if data is None or crc32c is None or data[start + 16] != 2:
        return bool(batch.validate_crc())
    return bool(crc32c(memoryview(data)[start + 21 : end]) == batch.crc)


def _passed_over(records: Any, batch: Any) -> bool:
    """Whether ``batch`` is one its consumer's :class:`RawPassingOver` passes over."""
    marker = records._value_deserializer
    return type(marker) is RawPassingOver and marker.passes_over(batch)
