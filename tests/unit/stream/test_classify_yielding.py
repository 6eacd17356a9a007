"""The classifier's batch step hands the event loop back every CLASSIFY_CHUNK_RECORDS records, so
aiokafka's sender and fetcher (in the same loop) go on while a big partition batch is classified."""

from __future__ import annotations

import asyncio

from tests.unit.factories import FakeRecord, inbound_json, where
from worker.classify.rules import default_rulebook
from worker.constants import CLASSIFY_CHUNK_RECORDS
from worker.events.providers import CANONICAL
from worker.stream.batch import BatchOutput, classify_records
from worker.stream.classifier import _classify_yielding

EMITTED = "2026-12-03T12:00:00.000000Z"


def _records(count: int) -> list[FakeRecord]:
    texts = ("STOP", "hello there", "START", "HELP", "see you at 6")
    return [
        FakeRecord(
            "mo.inbound",
            1,
            offset,
            1764000000000,
            b"k",
            inbound_json(texts[offset % 5], message_id=f"m{offset}"),
        )
        for offset in range(count)
    ]


class TurnCounter:
    """Stands for aiokafka's sender in the same event loop: counts the turns it gets."""

    def __init__(self) -> None:
        self.turns = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TurnCounter:
        self._task = asyncio.create_task(self._count())
        await asyncio.sleep(0)  # started
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _count(self) -> None:
        while True:
            self.turns += 1
            await asyncio.sleep(0)


async def test_a_big_partition_batch_gives_the_loop_a_turn_every_chunk_and_the_same_output() -> None:
    records = _records(2 * CLASSIFY_CHUNK_RECORDS + 7)  # three chunks
    book = default_rulebook()
    async with TurnCounter() as counter:
        before = counter.turns
        out = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9")
        await _classify_yielding(where(records), records, book, out, CANONICAL)
        during = counter.turns - before
    whole = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9")
    classify_records(where(records), records, book, whole)
    assert during >= 3  # a turn before each chunk
    assert (out.changes, out.replies, out.intents, out.consumed) == (
        whole.changes,
        whole.replies,
        whole.intents,
        whole.consumed,
    )


async def test_exactly_onces_small_partition_batch_gets_no_turn_before_it_is_queued() -> None:
    """first_turn=False (the exactly-once loop): a steady rate's batch, one slice, is classified
    without a turn, so its output is queued before a partition's transaction can start its next
    cycle without it; a bigger one still gets a turn between slices."""
    book = default_rulebook()
    async with TurnCounter() as counter:
        for count, most_turns in ((CLASSIFY_CHUNK_RECORDS, 0), (CLASSIFY_CHUNK_RECORDS + 1, 1)):
            records = _records(count)
            before = counter.turns
            out = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9")
            await _classify_yielding(where(records), records, book, out, CANONICAL, first_turn=False)
            assert counter.turns - before == most_turns
            assert out.consumed == count
