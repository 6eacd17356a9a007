"""worker.stream.records: a raw consumer's records, a batch at a time, are what aiokafka's own
path gives, record for record, and its fetch position moves the same way."""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record._crc32c import crc as crc32c
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.stream import records as module

TP = TopicPartition("in", 0)
READ_UNCOMMITTED = 0


@dataclass
class _State:
    """The part of aiokafka's partition state a FetchResult reads (pure stand-in, no broker)."""

    position: int
    paused: bool = False

    def consumed_to(self, position: int) -> None:
        self.position = position


@dataclass
class _Assignment:
    state: _State
    active: bool = True
    moves: list[int] = field(default_factory=list)

    def state_value(self, tp: TopicPartition) -> _State:
        return self.state


@dataclass(frozen=True)
class Batch:
    """One record batch of a fetch response: its records' offset deltas, and what kind it is."""

    base: int
    deltas: tuple[int, ...]
    kind: str = "data"  # data, transactional, control-abort, control-commit
    producer_id: int = -1
    compression: int = 0  # 0 none, 1 gzip (a compressed batch is read from its first record)
    producer_epoch: int | None = None  # None: 0 in a transaction, else -1


def _build(batch: Batch) -> bytes:
    transactional = batch.kind != "data"
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=batch.compression,
        is_transactional=int(transactional),
        producer_id=batch.producer_id,
        producer_epoch=(0 if transactional else -1) if batch.producer_epoch is None else batch.producer_epoch,
        base_sequence=0 if transactional or batch.producer_id >= 0 else -1,
        batch_size=1 << 20,
    )
    if batch.kind.startswith("control"):
        marker = 0 if batch.kind == "control-abort" else 1
        builder.append(0, timestamp=1, key=struct.pack(">hh", 0, marker), value=b"", headers=[])
    else:
        for delta in batch.deltas:
            value = f"v{batch.base + delta}".encode()
            builder.append(delta, timestamp=1000 + delta, key=b"k%d" % delta, value=value, headers=[])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, batch.base)
    if batch.kind.startswith("control"):
        attributes = struct.unpack_from(">h", raw, 21)[0] | 0x20
        struct.pack_into(">h", raw, 21, attributes)
        struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))  # the CRC covers the attributes
    if batch.deltas and not batch.kind.startswith("control"):
        # the last offset delta a compacted batch keeps: next_offset is past the removed records
        struct.pack_into(">i", raw, 23, max(batch.deltas) + 2)
        struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))
    return bytes(raw)


@pytest.fixture(autouse=True, params=["kept", "aiokafka"])
def _memory(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs on the records the fetcher builds once :func:`module.install` ran (the bytes
    kept: CRCs checked by the SSE 4.2 CRC-32C when built) and on aiokafka's own (its CRC check)."""
    memory = module.KeptRecords if request.param == "kept" else MemoryRecords
    monkeypatch.setattr(sys.modules[__name__], "Memory", memory)


Memory: Any = MemoryRecords


def _result(
    batches: list[Batch],
    position: int,
    aborted: list[tuple[int, int]],
    isolation: int,
    marker: Any = module.RAW,
) -> Any:
    data = b"".join(_build(batch) for batch in batches)
    records = PartitionRecords(TP, Memory(data), aborted, position, None, marker, True, isolation)
    return FetchResult(TP, assignment=_Assignment(_State(position)), partition_records=records, backoff=0)


Calls = list[tuple[list[tuple[int, Any, Any, int]], int]]


def _drain(result: Any, max_records: int | None, fast: bool) -> Calls:
    """Every getall() until the result is spent: (the records as tuples, the position after)."""
    calls = []
    original = module._installed  # aiokafka's own getall, kept by install()
    assert original is not None
    for _ in range(1000):
        if not result.has_more():
            break
        got = result.getall(max_records) if fast else original(result, max_records)
        calls.append(
            ([(r.offset, r.key, r.value, r.timestamp) for r in got], result._assignment.state.position)
        )
    return calls


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[Batch], int, list[tuple[int, int]], int]:
    batches: list[Batch] = []
    offset = draw(st.integers(0, 5))
    aborted: list[tuple[int, int]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["data", "data", "transactional", "control-abort", "control-commit"]))
        producer = draw(st.sampled_from([7, 8])) if kind != "data" else -1
        if kind.startswith("control"):
            batches.append(Batch(offset, (0,), kind, producer))
            offset += 1
            continue
        count = draw(st.integers(1, 6))
        gaps = draw(st.lists(st.booleans(), min_size=count, max_size=count))
        deltas = tuple(i for i, gone in enumerate(gaps) if not gone) or (0,)  # compaction's gaps
        batches.append(Batch(offset, deltas, kind, producer, draw(st.sampled_from([0, 0, 1]))))
        if kind == "transactional" and draw(st.booleans()):
            aborted.append((producer, offset))
        offset += max(deltas) + 3
    first = batches[0].base if batches else 0
    position = first + draw(st.integers(0, 2))  # a fetch may start inside its first batch
    isolation = draw(st.sampled_from([READ_COMMITTED, READ_UNCOMMITTED]))
    return batches, position, aborted, isolation


@pytest.fixture(autouse=True, scope="module")
def _installed() -> None:
    assert module.install()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layouts(), st.one_of(st.none(), st.integers(1, 7)))
def test_raw_records_are_aiokafkas_records_and_positions(
    layout: tuple[list[Batch], int, list[tuple[int, int]], int], max_records: int | None
) -> None:
    batches, position, aborted, isolation = layout
    expected = _drain(_result(batches, position, list(aborted), isolation), max_records, fast=False)
    got = _drain(_result(batches, position, list(aborted), isolation), max_records, fast=True)
    assert got == expected


def test_the_raw_path_returns_the_batches_own_records() -> None:
    result = _result([Batch(10, (0, 1, 2))], 10, [], READ_COMMITTED)
    got = result.getall(None)
    assert [type(r).__name__ for r in got] == ["DefaultRecord"] * 3
    assert [r.offset for r in got] == [10, 11, 12]
    assert result._assignment.state.position == 15  # past the batch's compacted tail


def test_other_consumers_keep_consumer_records() -> None:
    data = _build(Batch(0, (0, 1)))
    records = PartitionRecords(TP, Memory(data), [], 0, None, None, True, READ_COMMITTED)
    result = FetchResult(TP, assignment=_Assignment(_State(0)), partition_records=records, backoff=0)
    assert [type(r).__name__ for r in result.getall(None)] == ["ConsumerRecord"] * 2


def test_a_corrupt_batch_raises_as_aiokafka_does() -> None:
    raw = bytearray(_build(Batch(0, (0, 1))))
    raw[-1] ^= 0xFF
    records = PartitionRecords(TP, Memory(bytes(raw)), [], 0, None, module.RAW, True, READ_COMMITTED)
    result = FetchResult(TP, assignment=_Assignment(_State(0)), partition_records=records, backoff=0)
    with pytest.raises(CorruptRecordException):
        result.getall(None)


def test_a_corrupt_batch_after_good_ones_raises_and_the_good_ones_are_returned_first() -> None:
    """The kept bytes are walked batch by batch: the CRC checked is the corrupt batch's own."""
    good = _build(Batch(0, (0, 1))) + _build(Batch(5, (0,)))
    bad = bytearray(_build(Batch(8, (0, 1))))
    bad[-1] ^= 0xFF
    records = PartitionRecords(TP, Memory(good + bytes(bad)), [], 0, None, module.RAW, True, READ_COMMITTED)
    result = FetchResult(TP, assignment=_Assignment(_State(0)), partition_records=records, backoff=0)
    assert [r.offset for r in result.getall(2)] == [0, 1]
    assert [r.offset for r in result.getall(1)] == [5]
    with pytest.raises(CorruptRecordException):
        result.getall(None)


def test_our_own_batches_are_passed_over_without_a_crc_check() -> None:
    """The tail does not read its own batches, so it does not check them either; another
    producer's corrupt batch still raises."""
    ours = bytearray(_build(Batch(0, (0, 1), producer_id=7, producer_epoch=0)))
    ours[-1] ^= 0xFF  # not read: its CRC is not computed
    theirs = _build(Batch(5, (0,), producer_id=8, producer_epoch=0))
    passing = module.RawPassingOver(lambda: [(7, 0)])
    records = PartitionRecords(TP, Memory(bytes(ours) + theirs), [], 0, None, passing, True, READ_COMMITTED)
    result = FetchResult(TP, assignment=_Assignment(_State(0)), partition_records=records, backoff=0)
    assert [r.offset for r in result.getall(None)] == [5]
    theirs_bad = bytearray(theirs)
    theirs_bad[-1] ^= 0xFF
    records = PartitionRecords(TP, Memory(bytes(theirs_bad)), [], 5, None, passing, True, READ_COMMITTED)
    result = FetchResult(TP, assignment=_Assignment(_State(5)), partition_records=records, backoff=0)
    with pytest.raises(CorruptRecordException):
        result.getall(None)


def test_install_has_the_fetcher_keep_the_fetched_bytes() -> None:
    from aiokafka.consumer import fetcher

    if module.crc32c is None:
        pytest.skip("the C extension was not built: aiokafka's CRC check stays")
    assert fetcher.MemoryRecords is module.KeptRecords
    assert module.KeptRecords(b"abc").data == b"abc"


def test_a_moved_position_returns_nothing() -> None:
    """A seek between the fetch and the getall: the result is dropped, as aiokafka drops it."""
    result = _result([Batch(0, (0, 1))], 0, [], READ_COMMITTED)
    result._assignment.state.position = 99
    assert result.getall(None) == []
    assert not result.has_more()


def test_a_started_aiokafka_iterator_keeps_aiokafkas_path() -> None:
    result = _result([Batch(0, (0, 1, 2))], 0, [], READ_COMMITTED)
    first = result.getone()
    assert type(first).__name__ == "ConsumerRecord"
    rest = result.getall(None)
    assert [(type(r).__name__, r.offset) for r in rest] == [("ConsumerRecord", 1), ("ConsumerRecord", 2)]


@pytest.mark.parametrize("max_records", [None, 1, 2])
def test_an_abort_marker_ends_the_producers_aborted_transaction(max_records: int | None) -> None:
    """Its aborted batch is skipped, the same producer's next transaction (committed) is not."""
    batches = [
        Batch(0, (0, 1), "transactional", 7),
        Batch(5, (0,), "control-abort", 7),
        Batch(6, (0, 1), "transactional", 7),
        Batch(11, (0,), "control-commit", 7),
        Batch(12, (0,), "data"),
    ]
    expected = _drain(_result(batches, 0, [(7, 0)], READ_COMMITTED), max_records, fast=False)
    got = _drain(_result(batches, 0, [(7, 0)], READ_COMMITTED), max_records, fast=True)
    assert got == expected
    assert [offset for call, _ in got for offset, *_ in call] == [6, 7, 12]


def test_a_passing_over_consumer_skips_its_producers_batches_and_moves_past_them() -> None:
    """The classifier's change tail: batches of its own producers (id and epoch) are not read,
    everyone else's are, and the position moves past them all."""
    batches = [
        Batch(0, (0, 1), producer_id=7, producer_epoch=0),  # ours
        Batch(5, (0, 1), producer_id=8, producer_epoch=0),  # another producer's
        Batch(10, (0,), producer_id=7, producer_epoch=1),  # our id, an older or newer epoch
        Batch(13, (0,)),  # no producer id (a plain producer)
        Batch(16, (0, 1), producer_id=7, producer_epoch=0),  # ours, last
    ]
    calls = 0

    def producers() -> list[tuple[int, int]]:
        nonlocal calls
        calls += 1
        return [(7, 0), (-1, -1)]  # (-1, -1) never names a producer: plain batches are read

    result = _result(batches, 0, [], READ_COMMITTED, module.RawPassingOver(producers))
    got = _drain(result, None, fast=True)
    assert [offset for call, _ in got for offset, *_ in call] == [5, 6, 10, 13]
    assert got[-1][1] == 20  # past our last batch (its compacted tail too)
    assert calls == 4  # asked per batch with a producer id, never for the plain one


def test_a_passing_over_consumer_skips_the_plain_batches_it_built_by_their_identity() -> None:
    """Without a producer id (a broker without idempotent producers), a batch is ours when its CRC,
    first timestamp and record count are among the ones our producer noted."""
    batches = [Batch(0, (0, 1)), Batch(5, (0, 1)), Batch(10, (0,), producer_id=7, producer_epoch=0)]
    read = [DefaultRecordBatch(_build(batch)) for batch in batches]
    count = [batch.last_offset_delta + 1 for batch in read]  # as the header says (compacted: more)
    own = {
        (read[1].crc, read[1].first_timestamp, count[1]),
        (read[0].crc, read[0].first_timestamp, count[0] + 1),
    }
    result = _result(batches, 0, [], READ_COMMITTED, module.RawPassingOver(lambda: [(7, 0)], own))
    got = _drain(result, None, fast=True)
    assert [offset for call, _ in got for offset, *_ in call] == [0, 1]  # batch 0: not its count
    assert got[-1][1] == 13  # past the last batch, ours by its producer id


def test_a_plain_raw_consumer_reads_every_producers_batches() -> None:
    batches = [
        Batch(0, (0, 1), producer_id=7, producer_epoch=0),
        Batch(5, (0,), producer_id=8, producer_epoch=0),
    ]
    got = _drain(_result(batches, 0, [], READ_COMMITTED), None, fast=True)
    assert [offset for call, _ in got for offset, *_ in call] == [0, 1, 5]
