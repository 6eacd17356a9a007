"""The output's record batches built in C (``worker/stream/_batches.c``), in the shape aiokafka's
producer takes them, and the identities of the ones a producer without an id wrote.

:func:`worker.stream.produce.hand_over` uses :func:`encode` where :func:`c_batch_size` allows it:
the extension is built and the producer does not compress. The batches are byte for byte what
aiokafka's ``BatchBuilder`` writes for the same records (``tests/unit/stream/test_batches.py``
compares them). Why: a STOP storm hands over 320,000 records a run; per record in Python
(partition, ``BatchBuilder.append``, a size check) that was about 12% of the classifier's busy
time (py-spy), and in process, 200,000 change events of 600 bytes took 0.9 µs each that way
against 0.2-0.4 µs in C, the header's CRC-32C included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

encode_batches: Callable[..., dict[tuple[str, int], list[tuple[bytearray, int]]] | int] | None
_finish: Callable[..., int] | None
try:
    from worker.stream._batches import encode as encode_batches
    from worker.stream._batches import finish as _finish
except ImportError:  # no C compiler at install time: aiokafka's BatchBuilder
    encode_batches = _finish = None

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


def c_batch_size(producer: Any) -> int | None:
    """The producer's batch size when its batches may be built in C: the extension is built and the
    producer does not compress (compression stays aiokafka's). None: aiokafka's builder."""
    accumulator = getattr(producer, "_message_accumulator", None)
    if encode_batches is None or accumulator is None or getattr(accumulator, "_compression_type", 1) != 0:
        return None
    size = getattr(accumulator, "_batch_size", None)
    return size if isinstance(size, int) else None


def encode(
    runs: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
    partitions: dict[str, int],
    keyless: dict[str, int],
    batch_size: int,
    max_request_size: int,
    transactional: bool,
    own: OwnBatches | None,
) -> dict[tuple[str, int], list[EncodedBatch]] | int:
    """The records of ``runs`` as encoded batches per (topic, partition), or the index of a record
    larger than any request of ``max_request_size``. Only where :func:`c_batch_size` gave
    ``batch_size``."""
    assert encode_batches is not None
    encoded = encode_batches(runs, partitions, keyless, batch_size, max_request_size)
    if isinstance(encoded, int):
        return encoded
    timestamp = int(time.time() * 1000)  # one per hand-over; aiokafka's builder stamps each record
    return {
        where: [EncodedBatch(batch, count, timestamp, transactional, own) for batch, count in batches]
        for where, batches in encoded.items()
    }
