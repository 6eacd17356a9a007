"""Exactly-once: each transactional producer's transactions one after another, independent of
the others' (:class:`TransactionCycles`); why, and what it measured: :mod:`worker.stream.delivery`.
Pure asyncio: the transaction itself is the caller's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from aiokafka import TopicPartition

from worker.stream.delivery import Delivered, Fenced

Item = TypeVar("Item")
Unit: TypeAlias = TopicPartition | None
"""What one producer's transactions cover: a partition, or (None) all of the process's."""


@dataclass(slots=True)
class _Queued(Generic[Item]):
    """Output classified while its transaction unit's last transaction commits: its next one."""

    offsets: dict[TopicPartition, tuple[int, int]]
    items: list[Item]
    records: int


class TransactionCycles(Generic[Item]):
    """Each transaction unit's transactions one after another, the units independent of each other.

    A unit is an input partition (a transactional producer per partition), or, with
    ``per_process``, all of them (one producer for the process: :mod:`worker.stream.process_delivery`).
    What the loop classifies of a partition goes into a transaction at once if its unit's producer
    is free; otherwise it is queued, and everything queued (however many batches, of however many
    partitions) goes into the unit's next transaction, started as soon as the last one commits. So
    a record waits for at most its unit's transaction in flight, then its own: not for the slowest
    of a batch's partitions, nor for a fetch held back until all of them committed. Before (one
    transaction per partition of a batch, the next batch fetched once all were committed), the
    batch waited for the slowest of its four (about one in eleven of them retried
    AddPartitionsToTxn after 20 ms), and the next batch for it: see the latency rows of
    ``docs/performance-history.md``.

    ``interval`` (seconds; ``OPTOUT_TRANSACTION_INTERVAL_MS``): the least time between the starts
    of a unit's transactions. A transaction due sooner waits, and what is classified of its unit
    meanwhile goes into it too: fewer, larger transactions for a little more latency.

    ``deliver(offsets, items)`` runs one transaction (for each partition in ``offsets``, its offsets
    ``first`` .. ``after - 1``; :meth:`worker.stream.delivery.TransactionalOutput.deliver` and the
    metrics). The partitions of a transaction found fenced take nothing more (:attr:`fenced`, until
    the loop clears it at the next assignment); a transaction left uncommitted because the
    classifier is stopping sets :attr:`stopping`, after which nothing more is taken; an error of
    ``deliver`` is raised by :meth:`check` or :meth:`settled`.
    """

    def __init__(
        self,
        deliver: Callable[[dict[TopicPartition, tuple[int, int]], list[Item]], Awaitable[Delivered]],
        interval: float = 0.0,
        *,
        per_process: bool = False,
    ) -> None:
        self._deliver = deliver
        self._interval = interval
        self._per_process = per_process
        self._began: dict[Unit, float] = {}
        """When each unit's last transaction began (the event loop's clock): with ``interval``."""
        self._cycles: dict[Unit, asyncio.Task[None]] = {}
        self._queued: dict[Unit, _Queued[Item]] = {}
        self._error: BaseException | None = None
        self._taken = asyncio.Event()
        """Set whenever a cycle takes its queue or ends: :meth:`room` looks again."""
        self.fenced: Fenced = set()
        self.stopping = False

    def add(self, tp: TopicPartition, first: int, after: int, item: Item, records: int) -> None:
        """``tp``'s output for its offsets ``first`` .. ``after - 1``: delivered now, or queued."""
        if self.stopping or tp in self.fenced:
            return  # nothing more is handed over; a fenced partition's records are its new owner's
        unit = None if self._per_process else tp
        queued = self._queued.get(unit)
        if queued is not None:
            queued.items.append(item)
            _extend(queued.offsets, tp, first, after)
            queued.records += records
        elif unit in self._cycles:
            self._queued[unit] = _Queued({tp: (first, after)}, [item], records)
        else:
            self._cycles[unit] = asyncio.create_task(self._cycle(unit, {tp: (first, after)}, [item]))

    def queued_records(self) -> int:
        """The records queued behind the partitions' transactions in flight, all partitions'."""
        return sum(queued.records for queued in self._queued.values())

    async def room(self, most: int) -> None:
        """Wait while ``most`` records or more are queued (the loop is behind): at most a batch's
        worth waits behind the transactions in flight. Bounded per partition instead, a STOP storm
        backlog on four partitions peaked at 415-445 MB; bounded so, 329 MB (one run; a batch's
        transactions all committed before the next was handed over: 245 MB). Half a batch made no
        difference to the peak (321 MB)."""
        while self.queued_records() >= most and not self.stopping and self._error is None:
            self._taken.clear()
            await self._taken.wait()

    def check(self) -> None:
        """Raise the error a transaction met (refused for good), if one has."""
        if self._error is not None:
            raise self._error

    async def drain(self) -> None:
        """Wait until every partition's transactions, the queued ones too, are done (without
        raising: a rebalance revokes partitions only after that, then the loop sees any error)."""
        while self._cycles:
            await asyncio.wait(list(self._cycles.values()))

    async def settled(self) -> bool:
        """:meth:`drain`, then raise an error met; False when a transaction was left uncommitted
        because the classifier is stopping."""
        await self.drain()
        self.check()
        return not self.stopping

    def cancel(self) -> None:
        """An error left the loop: the transactions in flight are abandoned (never committed, or
        committed whole: a transaction is atomic either way), the queued ones dropped."""
        self._queued.clear()
        for cycle in self._cycles.values():
            cycle.cancel()

    async def _cycle(
        self, unit: Unit, offsets: dict[TopicPartition, tuple[int, int]], items: list[Item]
    ) -> None:
        try:
            while True:
                if self._interval:
                    await self._not_before(unit, offsets, items)
                result = await self._deliver(offsets, items)
                if not result.committed:
                    queued = self._queued.pop(unit, None)
                    if result.fenced:
                        # The queued output is dropped too: its partitions take nothing more until
                        # repositioned, or a later batch of theirs would commit past the dropped one.
                        self.fenced.update(offsets, queued.offsets if queued is not None else ())
                    else:
                        self.stopping = True
                    return
                queued = self._queued.pop(unit, None)
                if queued is None:
                    return
                self._taken.set()
                offsets, items = queued.offsets, queued.items
        except Exception as exc:  # kept for the loop, which raises it between batches
            self._queued.pop(unit, None)
            if self._error is None:
                self._error = exc
        finally:
            self._cycles.pop(unit, None)
            self._taken.set()

    async def _not_before(
        self, unit: Unit, offsets: dict[TopicPartition, tuple[int, int]], items: list[Item]
    ) -> None:
        """Wait until ``interval`` after ``unit``'s last transaction began, taking into ``offsets``
        and ``items`` what is queued meanwhile."""
        loop = asyncio.get_running_loop()
        wait = self._began.get(unit, float("-inf")) + self._interval - loop.time()
        if wait > 0 and not self.stopping:
            await asyncio.sleep(wait)
            queued = self._queued.pop(unit, None)
            if queued is not None:
                items.extend(queued.items)
                for tp, (first, after) in queued.offsets.items():
                    _extend(offsets, tp, first, after)
                self._taken.set()
        self._began[unit] = loop.time()


def _extend(
    offsets: dict[TopicPartition, tuple[int, int]], tp: TopicPartition, first: int, after: int
) -> None:
    """``tp``'s offsets ``first`` .. ``after - 1`` join those already in ``offsets`` (they follow them)."""
    known = offsets.get(tp)
    offsets[tp] = (known[0] if known is not None else first, after)
