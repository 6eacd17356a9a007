"""What every reader that tails the change topic needs from aiokafka: its partitions, its own
position, where a read_committed reader can get to, and when it has caught up.

Two readers tail the change topic: a send service's :class:`~worker.sender.BlocklistView` and the
classifier's memory of recent changes (:mod:`worker.stream.recent`). They wait for "current" the
same way (:class:`FreshEnds`), so the subtleties live here once: a high watermark known only from
fetch responses (``end_offsets()`` is wrong on Tansu), transaction markers that a read_committed
fetch skips, and an open transaction that holds the readable end below the high watermark.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


def consumed_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The consumer's position in ``tp`` (the offset after everything its fetches returned or
    skipped: records, transaction markers, aborted batches), without waiting; None while it has none
    (just sought, being reset). ``consumer.position()`` would wait for a reset; this reads the same
    state (aiokafka 0.14's subscription state) and never blocks the tail loop."""
    state = consumer._subscription.subscription
    if state is None or not consumer._subscription.is_assigned(tp):
        return None
    tp_state = state.assignment.state_value(tp)
    if tp_state is None or not tp_state.has_valid_position:
        return None
    position: int = tp_state.position
    return position


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, seconds: float) -> list[TopicPartition]:
    """The partitions of ``topic``, waiting up to ``seconds`` for it to exist (right on every broker)."""
    deadline = time.monotonic() + seconds
    while True:
        # Track the topic in the client's own metadata and refresh it. ``consumer.topics()`` fetches
        # into a throwaway copy: it only looked enough on Tansu, whose first metadata answer lists
        # every topic; Apache Kafka's lists none until a topic is asked for.
        await consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} does not exist")
        await asyncio.sleep(0.5)


def readable_end(consumer: Any, tp: TopicPartition) -> int:
    """Where a read_committed reader of ``tp`` can get to now: the last stable offset. Not the high
    watermark: an open transaction (a classifier killed mid-batch, whose successor has not fenced
    it yet) holds the last stable offset below it until aborted, and a wait for the high watermark
    waited its full timeout for records no read_committed reader can see. Their changes are aborted
    and produced again anyway. Where the broker gives none (read_uncommitted: -1; older brokers:
    None), the high watermark."""
    stable = consumer.last_stable_offset(tp)
    if stable is None or stable < 0:
        return int(consumer.highwater(tp) or 0)
    return int(stable)


class FreshEnds:
    """The readable end of each partition as of now, learnt from fetches sent after this object was
    made, and whether a reader's positions have reached it.

    The end offsets come from fetch responses, so a fresh one needs a fetch *sent* after the
    call: :meth:`poll` waits for two more responses per partition (the first may have been in
    flight), then takes the second one's :func:`readable_end` as the partition's target.
    """

    def __init__(self, consumer: Any, partitions: Iterable[TopicPartition]) -> None:
        self._consumer = consumer
        self._partitions = tuple(partitions)
        self._called_ms = time.time() * 1000
        self._seen: dict[TopicPartition, float] = {}
        self.targets: dict[TopicPartition, int] = {}

    def poll(self) -> None:
        """Note the fetch responses that arrived since the last call."""
        consumer, seen, targets = self._consumer, self._seen, self.targets
        for tp in self._partitions:
            polled = consumer.last_poll_timestamp(tp) if tp not in targets else None
            if polled is None:
                continue
            if tp not in seen:
                if polled > self._called_ms:
                    seen[tp] = polled
            elif polled > seen[tp]:
                targets[tp] = readable_end(consumer, tp)

    def reached(self, positions: Mapping[TopicPartition, int]) -> bool:
        """Whether every partition has its target and ``positions`` are at or past it."""
        targets = self.targets
        return len(targets) == len(self._partitions) and all(
            positions[tp] >= end for tp, end in targets.items()
        )
