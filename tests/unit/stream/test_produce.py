"""worker.stream.produce: a batch's output grouped per partition and sent as record batches, with
produce_all's contract (every ack awaited, everything resent in order on a retriable failure).

Every test runs on both ways of building the batches: in C (``worker/stream/_batches.c``) and
through aiokafka's ``BatchBuilder`` (the fallback, and the reference the C batches must equal
byte for byte)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from prometheus_client import CollectorRegistry

from worker.backoff import Backoff
from worker.config import Settings
from worker.errors import OutputRefusedError
from worker.ops.metrics import ClassifierMetrics
from worker.stream import encoded
from worker.stream.kafka import make_producer
from worker.stream.loop import OneInFlight, produce_all
from worker.stream.partition import partition_for
from worker.stream.produce import Record, acknowledged, group_by_partition, hand_over, send_batches


@pytest.fixture(autouse=True, params=["c", "aiokafka"])
def builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on both paths: the batches built in C, and aiokafka's BatchBuilder."""
    if request.param == "c" and encoded.encode_batches is None:
        pytest.skip("worker/stream/_batches.c is not built")
    if request.param == "aiokafka":
        monkeypatch.setattr(encoded, "encode_batches", None)
    return str(request.param)


def _records(n: int, topics: tuple[str, ...] = ("changes", "replies")) -> list[Record]:
    return [(topics[i % len(topics)], f"+1555{i % 7:04d}".encode(), f"v{i}".encode()) for i in range(n)]


def test_grouping_keeps_the_order_of_each_key_and_uses_kafkas_partition() -> None:
    records = _records(200)
    groups = group_by_partition(records, {"changes": 4, "replies": 3}, keyless={})
    for (topic, partition), group in groups.items():
        for key, _ in group:
            assert key is not None
            assert partition_for(key, 4 if topic == "changes" else 3) == partition
    regrouped = sorted((topic, value) for (topic, _), group in groups.items() for _, value in group)
    assert regrouped == sorted((topic, value) for topic, _, value in records)
    for topic in ("changes", "replies"):
        for key in {key for _, key, _ in records}:
            expected = [v for t, k, v in records if t == topic and k == key]
            got = [v for (t, _), group in groups.items() if t == topic for k, v in group if k == key]
            assert got == expected  # the order per key is the input order


def test_keyless_records_go_to_the_chosen_partition() -> None:
    records: list[Record] = [("dead", None, b"a"), ("dead", b"k", b"b"), ("dead", None, b"c")]
    groups = group_by_partition(records, {"dead": 8}, keyless={"dead": 5})
    assert groups[("dead", 5)][0] == (None, b"a")
    assert [v for k, v in groups[("dead", 5)] if k is None] == [b"a", b"c"]


class _TxnManager:
    def __init__(self, transactional_id: str | None) -> None:
        self.transactional_id = transactional_id
        self.added: list[Any] = []

    def maybe_add_partition_to_txn(self, tp: Any) -> None:
        self.added.append(tp)


class _Accumulator:
    def __init__(self, batch_size: int, compression_type: int = 0) -> None:
        self._batch_size = batch_size
        self._compression_type = compression_type


class _FakeProducer:
    """create_batch() gives real aiokafka BatchBuilders (small, so batches fill up), and its
    accumulator the same batch size for the C path; send_batch() records what it was given and
    acknowledges (or fails) at once."""

    def __init__(
        self,
        partitions: int = 4,
        batch_size: int = 300,
        transactional_id: str | None = None,
        failures: list[BaseException | None] | None = None,
    ) -> None:
        self.partitions = partitions
        self.batch_size = batch_size
        self._txn_manager = _TxnManager(transactional_id)
        self._max_request_size = 1_048_576
        self._message_accumulator = _Accumulator(batch_size)
        self.failures = failures or []
        self.calls: list[list[tuple[str, int, list[tuple[bytes | None, bytes]]]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    def begin(self) -> None:
        self.calls.append([])

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytearray(batch._build()))]
        self.calls[-1].append((topic, partition, records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failure = self.failures.pop(0) if self.failures else None
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(failure)
        return future


def _sent(call: list[tuple[str, int, list[tuple[bytes | None, bytes]]]]) -> list[Record]:
    return [(topic, key, value) for topic, _, records in call for key, value in records]


async def test_full_batches_are_sent_and_continued_in_order() -> None:
    producer = _FakeProducer(batch_size=200)
    records = _records(300)
    producer.begin()
    assert await send_batches(producer, records) is None
    call = producer.calls[0]
    assert len(call) > 2 * 4  # several batches per partition
    assert sorted(_sent(call)) == sorted(records)
    for pair in {(t, k) for t, k, _ in records}:
        assert [r for r in _sent(call) if r[:2] == pair] == [r for r in records if r[:2] == pair]
    for _, partition, batch in call:
        assert all(key is not None and partition_for(key, 4) == partition for key, _ in batch)


async def test_a_transactional_producer_registers_every_partition() -> None:
    producer = _FakeProducer(transactional_id="optout-classifier-0")
    producer.begin()
    assert await send_batches(producer, _records(50)) is None
    sent = {(topic, partition) for topic, partition, _ in producer.calls[0]}
    assert {(tp.topic, tp.partition) for tp in producer._txn_manager.added} == sent
    plain = _FakeProducer(transactional_id=None)
    plain.begin()
    assert await send_batches(plain, _records(50)) is None
    assert plain._txn_manager.added == []


async def test_a_failed_batch_is_reported_with_its_topic_after_all_are_awaited() -> None:
    error = NotLeaderForPartitionError()
    producer = _FakeProducer(failures=[None, error])
    producer.begin()
    failure = await send_batches(producer, _records(40))
    assert failure is not None
    assert failure[1] is error
    assert failure[0] == producer.calls[0][1][0]


async def test_a_record_too_large_for_any_request_is_refused_before_sending() -> None:
    producer = _FakeProducer()
    producer._max_request_size = 2000
    producer.begin()
    failure = await send_batches(producer, [("replies", None, b"small"), ("replies", None, b"x" * 5000)])
    assert failure is not None
    assert failure[0] == "replies"
    assert isinstance(failure[1], MessageSizeTooLargeError)
    assert producer.calls == [[]]


class _RetryingProducer(_FakeProducer):
    async def partitions_for(self, topic: str) -> set[int]:
        if topic == "changes":  # once per hand-over: every one here has records of changes
            self.begin()
        return set(range(self.partitions))


async def test_produce_all_resends_everything_in_the_same_order_after_a_retriable_failure() -> None:
    producer = _RetryingProducer(failures=[None, KafkaTimeoutError(), None], batch_size=1000)
    records = _records(60, topics=("changes",))
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    assert await produce_all(producer, records, backoff, metrics, asyncio.Event())
    assert len(producer.calls) == 2
    assert _sent(producer.calls[0]) == _sent(producer.calls[1])
    assert sorted(_sent(producer.calls[1])) == sorted(records)


async def test_produce_all_raises_for_a_record_refused_for_good() -> None:
    producer = _RetryingProducer(failures=[MessageSizeTooLargeError()])
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    with pytest.raises(OutputRefusedError, match="topic changes"):
        await produce_all(producer, _records(5, topics=("changes",)), backoff, metrics, asyncio.Event())


class _AckedByHandProducer(_RetryingProducer):
    """Each hand-over is one entry of ``calls`` (as for _RetryingProducer); every batch's ack is a
    future the test resolves or fails, as the broker would, later."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acks: list[list[asyncio.Future[Any]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        if topic == "changes":  # once per hand-over: every one here has records of changes
            self.acks.append([])
        return await super().partitions_for(topic)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytearray(batch._build()))]
        self.calls[-1].append((topic, partition, records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[-1].append(future)
        return future

    def ack(self, attempt: int, error: BaseException | None = None) -> None:
        for future in self.acks[attempt]:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


async def test_hand_over_returns_before_the_acks_and_acknowledged_waits_for_all() -> None:
    producer = _AckedByHandProducer(batch_size=200)
    records = _records(100)
    handed = await hand_over(producer, records)  # returns with every ack still outstanding
    if handed.feeding is not None:  # each partition's batches after its first, in the background
        await handed.feeding
    assert handed.failure is None
    assert sorted(_sent(producer.calls[0])) == sorted(records)
    assert len(handed.futures) == len(producer.acks[0]) > 1
    waiting = asyncio.ensure_future(acknowledged(handed))
    for future in producer.acks[0][:-1]:
        future.set_result(None)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # one batch unacknowledged: still waiting
    error = NotLeaderForPartitionError()
    producer.acks[0][-1].set_exception(error)
    failure = await waiting
    assert failure is not None
    assert failure[1] is error
    assert failure[0] == producer.calls[0][-1][0]  # the failed batch's topic


class _DrainingProducer(_AckedByHandProducer):
    """As aiokafka's accumulator: a partition's next batch is taken only once its last one has
    left (here: once it is acked)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last: dict[tuple[str, int], asyncio.Future[Any]] = {}

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        last = self.last.get((topic, partition))
        if last is not None:
            await asyncio.wait([last])
        future = await super().send_batch(batch, topic, partition=partition)
        self.last[(topic, partition)] = future
        return future


async def test_hand_over_does_not_wait_for_a_partitions_further_batches_to_be_taken() -> None:
    """A STOP storm fills several batches per partition: hand_over returns once each partition's
    first one is queued, the rest follow in order as the producer takes them, and acknowledged()
    waits for all of them."""
    producer = _DrainingProducer(batch_size=200)
    records = _records(100)
    handed = await hand_over(producer, records)
    first = list(producer.calls[0])
    assert len({(topic, partition) for topic, partition, _ in first}) == len(first)  # one per partition
    assert handed.feeding is not None
    waiting = asyncio.ensure_future(acknowledged(handed))
    while not waiting.done():  # the broker acks whatever is in flight, a round at a time
        await asyncio.sleep(0.001)
        for future in producer.acks[0]:
            if not future.done():
                future.set_result(None)
    assert await waiting is None
    assert len(producer.calls[0]) > len(first)
    assert sorted(_sent(producer.calls[0])) == sorted(records)
    for topic, partition in {(t, p) for t, p, _ in producer.calls[0]}:  # each partition in order
        sent = [r for t, p, rs in producer.calls[0] if (t, p) == (topic, partition) for r in rs]
        assert sent == [(k, v) for t, k, v in records if t == topic and (k, v) in sent]


async def test_produce_all_resends_everything_when_what_was_handed_over_fails() -> None:
    producer = _RetryingProducer(failures=[None, KafkaTimeoutError()], batch_size=1000)
    records = _records(60, topics=("changes",))
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    handed = await hand_over(producer, records)  # the classifier's hand-over, acks not awaited
    assert await produce_all(producer, records, backoff, metrics, asyncio.Event(), handed)
    assert len(producer.calls) == 2  # the failed hand-over, then one resend of everything
    assert _sent(producer.calls[1]) == _sent(producer.calls[0])
    assert sorted(_sent(producer.calls[1])) == sorted(records)
    assert metrics.retries.labels("kafka")._value.get() == 1


async def test_produce_all_does_not_resend_what_was_handed_over_and_acked() -> None:
    producer = _RetryingProducer(batch_size=1000)
    records = _records(60, topics=("changes",))
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    handed = await hand_over(producer, records)
    assert await produce_all(producer, records, backoff, metrics, asyncio.Event(), handed)
    assert len(producer.calls) == 1


async def _until(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not reached")


async def test_one_in_flight_hands_the_next_batch_over_only_after_the_last_is_acked_even_resent() -> None:
    producer = _AckedByHandProducer()
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    output = OneInFlight(producer, backoff, metrics, asyncio.Event(), logging.getLogger("test"))
    first = [("changes", b"+15550001", b"STOP")]
    second = [("changes", b"+15550001", b"START")]  # the same key: it must land after the STOP
    acked: list[str] = []
    assert await output.send(first, lambda: acked.append("first"))  # handed over, acks outstanding
    sending = asyncio.ensure_future(output.send(second, lambda: acked.append("second")))
    await asyncio.sleep(0.02)
    assert len(producer.calls) == 1  # the second batch waits for the first's acks
    producer.ack(0, KafkaTimeoutError())  # the broker never stored the first: resent, all of it
    await _until(lambda: len(producer.calls) == 2)
    assert _sent(producer.calls[1]) == first
    assert not sending.done()  # the resend is not acked yet: still waiting
    assert acked == []
    producer.ack(1)
    assert await sending  # now the second is handed over, after the first's resend
    assert [_sent(call) for call in producer.calls] == [first, first, second]
    assert acked == ["first"]
    producer.ack(2)
    assert await output.settled()
    assert acked == ["first", "second"]


async def test_one_in_flight_cancelled_hands_no_further_batch_over() -> None:
    """An error leaves the loop right after a hand-over: the batch in flight is abandoned whole,
    the partitions' further batches included (they wait for the first ones to leave)."""
    producer = _DrainingProducer(batch_size=200)
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ClassifierMetrics(CollectorRegistry())
    output = OneInFlight(producer, backoff, metrics, asyncio.Event(), logging.getLogger("test"))
    assert await output.send(_records(100), lambda: None)
    handed_first = len(producer.calls[0])
    output.cancel()
    for future in producer.acks[0]:  # the first batches leave: nothing may follow them now
        future.set_result(None)
    await asyncio.sleep(0.02)
    assert len(producer.calls[0]) == handed_first


async def test_one_in_flight_raises_a_refusal_for_good_between_batches() -> None:
    producer = _AckedByHandProducer()
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    output = OneInFlight(
        producer, backoff, ClassifierMetrics(CollectorRegistry()), asyncio.Event(), logging.getLogger("test")
    )
    assert await output.send([("changes", b"k", b"v")], lambda: None)
    output.check()  # nothing failed yet
    producer.ack(0, MessageSizeTooLargeError())
    await output.wait()  # never raises: the rebalance's wait
    with pytest.raises(OutputRefusedError):
        output.check()
    with pytest.raises(OutputRefusedError):
        await output.send([("changes", b"k", b"w")], lambda: None)
    assert len(producer.calls) == 1  # nothing more was handed over


async def test_one_in_flight_hands_nothing_over_when_stopping_without_the_last_acks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("worker.stream.loop.SHUTDOWN_GRACE_SECONDS", 0.0)
    producer = _AckedByHandProducer()
    backoff = Backoff("kafka", logging.getLogger("test"), initial=0.001, maximum=0.001)
    stop = asyncio.Event()
    metrics = ClassifierMetrics(CollectorRegistry())
    output = OneInFlight(producer, backoff, metrics, stop, logging.getLogger("test"))
    acked: list[int] = []
    assert await output.send([("changes", b"k", b"v")], lambda: acked.append(1))
    stop.set()
    producer.ack(0, KafkaTimeoutError())
    failing = asyncio.ensure_future(_fail_every_resend(producer))  # the broker stays unreachable
    assert not await output.send([("changes", b"k", b"w")], lambda: acked.append(2))
    failing.cancel()
    assert acked == []
    assert all(_sent(call) == [("changes", b"k", b"v")] for call in producer.calls)  # never the second


async def _fail_every_resend(producer: _AckedByHandProducer) -> None:
    while True:
        for acks in producer.acks:
            for future in acks:
                if not future.done():
                    future.set_exception(KafkaTimeoutError())
        await asyncio.sleep(0.001)


async def test_a_compressing_producer_gets_aiokafkas_builders() -> None:
    producer = _FakeProducer()
    producer._message_accumulator = _Accumulator(300, compression_type=2)
    assert encoded.c_batch_size(producer) is None
    producer.begin()
    records = _records(20)
    assert await send_batches(producer, records) is None
    assert sorted(_sent(producer.calls[0])) == sorted(records)


async def test_the_workers_producers_build_batches_of_the_configured_size() -> None:
    """OPTOUT_PRODUCE_BATCH_BYTES reaches the batches: aiokafka's builders and ours (C) alike."""
    for raw, size in (("", 1_000_000), ("262144", 262_144)):
        env = {"OPTOUT_PRODUCE_BATCH_BYTES": raw} if raw else {}
        producer = make_producer(Settings.from_mapping(env))  # not started: no broker needed
        try:
            assert producer._message_accumulator._batch_size == size
            if encoded.encode_batches is not None:
                assert encoded.c_batch_size(producer) == size
        finally:
            await producer.stop()
