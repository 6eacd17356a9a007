"""worker/stream/_batches.c: a batch's output as Kafka record batches built in C, byte for byte what
aiokafka's builder writes; and the identities the change tail passes over (OwnBatches)."""

from __future__ import annotations

import shutil

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.record.util import calc_crc32c
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.stream import encoded
from worker.stream.encoded import EncodedBatch, OwnBatches
from worker.stream.produce import ByTopic, Record, Run, group_by_partition, runs_of

try:
    from worker.stream import _batches
except ImportError:  # no C compiler at install time
    _batches = None  # type: ignore[assignment]

BUILT = pytest.mark.skipif(_batches is None, reason="worker/stream/_batches.c is not built")
T0 = 1_700_000_000_000


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    """The install builds it when it can: with a C compiler here, the fast path must be in use."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: aiokafka's BatchBuilder is in use, as designed")
    assert encoded.encode_batches is not None, "worker/stream/_batches.c was not built: pip install -e ."


KEYS = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"+15550001", b"+15550002", b""]))
RECORDS = st.lists(
    st.tuples(st.sampled_from(["changes", "replies"]), KEYS, st.binary(max_size=3000)), max_size=60
)


@BUILT
@settings(max_examples=300, deadline=None)
@given(records=RECORDS, batch_size=st.integers(min_value=1, max_value=20_000), state=st.booleans())
@example(  # a batch that would end exactly at batch_size is closed before (aiokafka's compiled rule)
    records=[("changes", None, b"")] * 4 + [("changes", None, b"\x00" * 6)], batch_size=102, state=False
)
def test_batches_built_in_c_are_byte_for_byte_aiokafkas(
    records: list[Record], batch_size: int, state: bool
) -> None:
    """Same records per partition, same cuts between batches, same bytes: aiokafka's builder given
    the same records at the same timestamp and producer state writes what C wrote."""
    partitions, keyless = {"changes": 4, "replies": 3}, {"changes": 1, "replies": 2}
    encoded = _batches.encode(runs_of(records), partitions, keyless, batch_size, 1_048_576)
    assert not isinstance(encoded, int)
    expected = group_by_partition(records, partitions, keyless=keyless)
    assert list(encoded) == list(expected)  # the same groups, in the order each first appears
    pid, epoch, sequence = (4242, 7, 100) if state else (-1, -1, -1)
    for where, batches in encoded.items():
        reference = [BatchBuilder(batch_size, 0)]
        for key, value in expected[where]:  # aiokafka's cuts, with its size rule
            if reference[-1].append(key=key, value=value, timestamp=T0) is None:
                reference.append(BatchBuilder(batch_size, 0))
                reference[-1].append(key=key, value=value, timestamp=T0)
        assert [count for _, count in batches] == [b.record_count() for b in reference]
        for (batch, count), theirs in zip(batches, reference, strict=True):
            crc = _batches.finish(batch, count, T0, 0, pid, epoch, sequence)
            theirs._set_producer_state(pid, epoch, sequence)
            assert bytes(batch) == bytes(theirs._build())
            assert DefaultRecordBatch(bytes(batch)).crc == crc


@BUILT
def test_a_record_no_request_can_hold_is_reported_by_its_index_and_nothing_is_built() -> None:
    records: list[Record] = [
        ("replies", b"a", b"small"),
        ("replies", None, b"x" * 5000),
        ("replies", b"b", b"y"),
    ]
    assert _batches.encode(runs_of(records), {"replies": 2}, None, 1000, 2000) == 1
    assert _batches.encode(runs_of(records[:1]), {"replies": 2}, None, 1000, 2000) != 1
    later: list[Run] = [("changes", [(b"k", b"v")]), ("replies", [(None, b"x" * 5000)])]
    assert _batches.encode(later, {"changes": 1, "replies": 1}, None, 1000, 2000) == 1  # across runs


@BUILT
def test_a_topic_without_a_partition_count_is_an_error() -> None:
    with pytest.raises(KeyError):
        _batches.encode([("elsewhere", [(b"k", b"v")])], {"changes": 1}, None, 1000, 10**6)


@BUILT
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=5000))
def test_the_crc32c_is_kafkas(data: bytes) -> None:
    assert _batches.crc32c(data) == calc_crc32c(data)


def _one_batch(*records: tuple[bytes | None, bytes]) -> tuple[bytearray, int]:
    encoded = _batches.encode([("changes", records)], {"changes": 1}, {}, 10_000, 10**6)
    assert not isinstance(encoded, int)
    [only] = encoded[("changes", 0)]
    return only


@BUILT
def test_an_encoded_batch_without_a_producer_id_notes_its_identity_for_the_tail() -> None:
    own = OwnBatches(keep=2)
    plain = EncodedBatch(*_one_batch((b"k", b"v"), (b"k", b"w")), T0, False, own)
    read = DefaultRecordBatch(bytes(plain._build()))
    assert [(r.key, r.value, r.timestamp) for r in read] == [(b"k", b"v", T0), (b"k", b"w", T0)]
    assert not read.is_transactional
    assert (read.crc, read.first_timestamp, 2) in own
    assert plain._build() is plain._build()  # a retry resends the same bytes, noted once
    assert len(own) == 1
    transactional = EncodedBatch(*_one_batch((b"k", b"x")), T0 + 1, True, own)
    transactional._set_producer_state(7, 0, 3)  # what the sender does before draining it
    read = DefaultRecordBatch(bytes(transactional._build()))
    assert read.is_transactional
    assert (read.producer_id, read.producer_epoch, read.base_sequence) == (7, 0, 3)
    assert len(own) == 1  # a producer with an id: the tail passes it over by its id instead


@BUILT
def test_a_plain_producers_encoded_batch_is_aiokafkas() -> None:
    """No producer state set (a producer without an id): the same header fields as aiokafka's."""
    ours = EncodedBatch(*_one_batch((b"k", b"v"), (None, b"w")), T0, False, None)
    theirs = BatchBuilder(10_000, 0)
    theirs.append(key=b"k", value=b"v", timestamp=T0)
    theirs.append(key=None, value=b"w", timestamp=T0)
    assert bytes(ours._build()) == bytes(theirs._build())


def test_own_batches_keep_the_last_ones_only() -> None:
    own = OwnBatches(keep=3)
    for crc in range(5):
        own.add(crc, 1000, 1)
    assert len(own) == 3
    assert (1, 1000, 1) not in own
    assert (4, 1000, 1) in own
    assert (4, 1001, 1) not in own
    assert (4, 1000, 2) not in own


@given(records=RECORDS)
def test_records_by_topic_read_as_the_records_they_hold(records: list[Record]) -> None:
    runs = runs_of(records)
    assert [(topic, key, value) for topic, pairs in runs for key, value in pairs] == records
    assert all(runs[i][0] != runs[i + 1][0] for i in range(len(runs) - 1))  # one run per stretch
    held = ByTopic([*runs, ("empty", [])])
    assert list(held) == records
    assert len(held) == len(records)
    assert runs_of(held) == runs  # the runs themselves, not a copy
    if records:
        assert held[-1] == records[-1]
        assert list(held[1:]) == records[1:]
