"""Exactly-once: each producer's transactions one after another, independent of the others': a
producer per partition, or one for the process."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from worker.stream.cycles import TransactionCycles
from worker.stream.delivery import Delivered

P0, P1 = TopicPartition("in", 0), TopicPartition("in", 1)


class Broker:
    """A stand-in for the transactions: each waits until the test lets it commit. A transaction of
    one partition is recorded as (tp, first, after, items); with ``per_process``, as (offsets,
    items), and the gates are one (None) for all partitions."""

    def __init__(self, per_process: bool = False) -> None:
        self.per_process = per_process
        self.runs: list[tuple[object, ...]] = []
        self.began: list[float] = []
        self.gates: dict[TopicPartition | None, asyncio.Queue[Delivered | BaseException]] = {}

    async def deliver(self, offsets: dict[TopicPartition, tuple[int, int]], items: list[str]) -> Delivered:
        if self.per_process:
            self.runs.append((dict(offsets), list(items)))
            gate = None
        else:
            ((gate, (first, after)),) = offsets.items()
            self.runs.append((gate, first, after, list(items)))
        self.began.append(asyncio.get_running_loop().time())
        outcome = await self.gates.setdefault(gate, asyncio.Queue()).get()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def finish(self, tp: TopicPartition | None, outcome: Delivered | BaseException) -> None:
        self.gates.setdefault(tp, asyncio.Queue()).put_nowait(outcome)


async def _turn() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _commit_all(broker: Broker, cycles: TransactionCycles[str], *tps: TopicPartition) -> bool:
    """Let the transaction in flight of each of ``tps`` commit; :meth:`TransactionCycles.settled`."""
    for tp in tps:
        broker.finish(tp, Delivered(committed=True))
    return await cycles.settled()


async def _one_in_flight_one_queued() -> tuple[Broker, TransactionCycles[str]]:
    """P0's offsets 0-9 in a transaction not yet committed, 10-19 queued behind it."""
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    cycles.add(P0, 10, 20, "b", 10)
    return broker, cycles


async def test_a_partition_queues_while_its_transaction_commits_and_the_queue_goes_together() -> None:
    """What is classified of a partition while its transaction commits goes, all of it, into its
    next transaction; another partition's transactions do not wait for it."""
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    cycles.add(P0, 10, 15, "b", 5)
    cycles.add(P0, 15, 30, "c", 15)
    cycles.add(P1, 0, 4, "x", 4)
    await _turn()
    assert broker.runs == [(P0, 0, 10, ["a"]), (P1, 0, 4, ["x"])]  # P1 did not wait for P0
    assert cycles.queued_records() == 20
    broker.finish(P0, Delivered(committed=True))
    await _turn()
    assert broker.runs[-1] == (P0, 10, 30, ["b", "c"])  # the queue, as one transaction
    assert cycles.queued_records() == 0
    assert await _commit_all(broker, cycles, P0, P1) is True
    assert len(broker.runs) == 3


async def test_room_waits_while_a_batch_s_worth_is_queued_all_partitions_together() -> None:
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver)
    cycles.add(P0, 0, 100, "a", 100)
    cycles.add(P1, 0, 100, "x", 100)
    await _turn()
    cycles.add(P0, 100, 160, "b", 60)
    cycles.add(P1, 100, 150, "y", 50)
    assert cycles.queued_records() == 110
    waiting = asyncio.ensure_future(cycles.room(100))
    await _turn()
    assert not waiting.done()  # behind: a batch's worth queued behind the transactions in flight
    broker.finish(P0, Delivered(committed=True))
    await asyncio.wait_for(waiting, 1)  # P0's next transaction took its 60: room for another batch
    assert cycles.queued_records() == 50
    await cycles.room(100)
    for tp in (P0, P1, P1):
        broker.finish(tp, Delivered(committed=True))
    assert await cycles.settled() is True
    assert broker.runs[-1] == (P1, 100, 150, ["y"])


async def test_a_fenced_partition_takes_nothing_more_until_cleared() -> None:
    broker, cycles = await _one_in_flight_one_queued()
    broker.finish(P0, Delivered(committed=False, fenced=True))
    await cycles.drain()
    assert cycles.fenced == {P0}
    assert broker.runs == [(P0, 0, 10, ["a"])]  # the queued batch was dropped with it
    cycles.add(P0, 20, 30, "c", 10)  # records of it fetched before the pause: its new owner's
    await _turn()
    assert len(broker.runs) == 1
    cycles.fenced.clear()  # the next assignment repositioned it
    cycles.add(P0, 10, 30, "d", 20)
    await _turn()
    assert broker.runs[-1] == (P0, 10, 30, ["d"])
    broker.finish(P0, Delivered(committed=True))
    assert await cycles.settled() is True


async def test_stopping_with_a_transaction_uncommitted_hands_nothing_more_over() -> None:
    broker, cycles = await _one_in_flight_one_queued()
    broker.finish(P0, Delivered(committed=False))
    assert await cycles.settled() is False
    assert cycles.stopping
    cycles.add(P1, 0, 5, "x", 5)
    await _turn()
    assert broker.runs == [(P0, 0, 10, ["a"])]


async def test_an_error_is_raised_between_batches_and_by_settled_not_by_drain() -> None:
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    cycles.check()  # nothing failed yet
    broker.finish(P0, RuntimeError("refused for good"))
    await cycles.drain()  # a rebalance waits without raising
    with pytest.raises(RuntimeError, match="refused for good"):
        cycles.check()
    with pytest.raises(RuntimeError, match="refused for good"):
        await cycles.settled()


async def test_cancelling_abandons_the_transactions_in_flight_and_drops_the_queued() -> None:
    broker, cycles = await _one_in_flight_one_queued()
    cycles.cancel()
    await cycles.drain()
    assert cycles.queued_records() == 0
    assert broker.runs == [(P0, 0, 10, ["a"])]


async def test_an_interval_holds_a_partition_s_next_transaction_and_it_takes_what_came_meanwhile() -> None:
    """OPTOUT_TRANSACTION_INTERVAL_MS: a partition's next transaction starts no sooner than the
    interval after its last one began, with everything classified of it by then; another
    partition's first transaction does not wait."""
    interval = 0.2
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver, interval)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    broker.finish(P0, Delivered(committed=True))
    await _turn()
    cycles.add(P0, 10, 15, "b", 5)  # right after the commit: held
    cycles.add(P1, 0, 4, "x", 4)
    await _turn()
    cycles.add(P0, 15, 30, "c", 15)
    assert broker.runs == [(P0, 0, 10, ["a"]), (P1, 0, 4, ["x"])]  # P1's first one did not wait
    await asyncio.sleep(interval * 1.5)
    assert broker.runs[-1] == (P0, 10, 30, ["b", "c"])  # one transaction, after the interval
    assert broker.began[2] - broker.began[0] >= interval
    assert cycles.queued_records() == 0
    assert await _commit_all(broker, cycles, P0, P1) is True
    assert len(broker.runs) == 3


async def test_without_an_interval_the_next_transaction_starts_at_the_commit() -> None:
    broker = Broker()
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    broker.finish(P0, Delivered(committed=True))
    await _turn()
    cycles.add(P0, 10, 15, "b", 5)
    await _turn()
    assert broker.runs == [(P0, 0, 10, ["a"]), (P0, 10, 15, ["b"])]
    assert await _commit_all(broker, cycles, P0) is True


async def test_per_process_one_transaction_takes_every_partition_s_output_queued_meanwhile() -> None:
    """One producer for the process: what is classified of any partition while its transaction
    commits goes into the next one, each partition's offsets from its first queued to its last."""
    broker = Broker(per_process=True)
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver, per_process=True)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    cycles.add(P1, 0, 4, "x", 4)  # waits for P0's transaction: the same producer
    cycles.add(P0, 10, 15, "b", 5)
    cycles.add(P0, 15, 30, "c", 15)
    await _turn()
    assert broker.runs == [({P0: (0, 10)}, ["a"])]
    assert cycles.queued_records() == 24
    broker.finish(None, Delivered(committed=True))
    await _turn()
    assert broker.runs[-1] == ({P1: (0, 4), P0: (10, 30)}, ["x", "b", "c"])
    broker.finish(None, Delivered(committed=True))
    assert await cycles.settled() is True
    assert len(broker.runs) == 2


async def test_per_process_a_fenced_transaction_fences_all_its_partitions() -> None:
    broker = Broker(per_process=True)
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver, per_process=True)
    cycles.add(P0, 0, 10, "a", 10)
    cycles.add(P1, 0, 5, "x", 5)  # queued behind it
    await _turn()
    broker.finish(None, Delivered(committed=False, fenced=True))
    await cycles.drain()
    # The refused transaction held P0 only; P1's queued output was dropped with it, so P1 takes
    # nothing more either until repositioned: a later batch of it would commit past the dropped one.
    assert cycles.fenced == {P0, P1}
    assert cycles.queued_records() == 0
    cycles.add(P1, 5, 20, "y", 15)
    await _turn()
    assert len(broker.runs) == 1


async def test_per_process_an_interval_holds_the_next_transaction_of_all_partitions() -> None:
    interval = 0.2
    broker = Broker(per_process=True)
    cycles: TransactionCycles[str] = TransactionCycles(broker.deliver, interval, per_process=True)
    cycles.add(P0, 0, 10, "a", 10)
    await _turn()
    broker.finish(None, Delivered(committed=True))
    await _turn()
    cycles.add(P1, 0, 4, "x", 4)  # right after the commit: held
    await _turn()
    cycles.add(P1, 4, 9, "y", 5)
    cycles.add(P0, 10, 12, "b", 2)
    await asyncio.sleep(interval * 1.5)
    assert broker.runs[-1] == ({P1: (0, 9), P0: (10, 12)}, ["x", "y", "b"])
    assert broker.began[1] - broker.began[0] >= interval
    broker.finish(None, Delivered(committed=True))
    assert await cycles.settled() is True
