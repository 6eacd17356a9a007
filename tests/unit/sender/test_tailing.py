"""Where a tail of the change topic counts as caught up (worker.sender.tailing): the send
services' BlocklistView and the classifier's confirmation memory both wait with it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from worker.sender.tailing import FreshEnds, readable_end

TP = TopicPartition("blocklist.changes", 0)


@dataclass
class _Offsets:
    """What aiokafka's consumer reports from its last fetch response for one partition."""

    stable: int | None
    high: int | None
    polled_ms: float | None = None

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self.stable

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high

    def last_poll_timestamp(self, tp: TopicPartition) -> float | None:
        return self.polled_ms


def test_an_open_transaction_is_not_waited_for() -> None:
    # A killed classifier's transaction holds the last stable offset at 40 while 55 records exist:
    # a read_committed reader can get to 40, and that is caught up.
    assert readable_end(_Offsets(stable=40, high=55), TP) == 40


@pytest.mark.parametrize(("stable", "high", "end"), [(-1, 55, 55), (None, 55, 55), (-1, None, 0)])
def test_without_a_last_stable_offset_the_high_watermark_is_the_end(
    stable: int | None, high: int | None, end: int
) -> None:
    # read_uncommitted answers -1 and older brokers None: the high watermark is what can be read.
    assert readable_end(_Offsets(stable, high), TP) == end


def test_caught_up_only_against_an_end_from_a_fetch_sent_after_the_call() -> None:
    """The first response after the call may have been in flight before it: its end may be stale.
    The second one's is the target, and the reader is current once its position reaches it."""
    consumer = _Offsets(stable=40, high=55, polled_ms=time.time() * 1000 - 1000)  # before the call
    ends = FreshEnds(consumer, [TP])
    ends.poll()
    assert not ends.reached({TP: 100})  # nothing fetched since the call: not known yet
    consumer.polled_ms = time.time() * 1000 + 1000  # the first response after the call
    ends.poll()
    assert not ends.reached({TP: 100})
    consumer.polled_ms += 1000  # the second: its readable end (the last stable offset) is the target
    ends.poll()
    assert ends.targets == {TP: 40}
    assert not ends.reached({TP: 39})
    assert ends.reached({TP: 40})
    consumer.stable, consumer.polled_ms = 70, consumer.polled_ms + 1000  # later fetches move nothing
    ends.poll()
    assert ends.targets == {TP: 40}


def test_every_partition_needs_its_target() -> None:
    other = TopicPartition("blocklist.changes", 1)
    consumer = _Offsets(stable=5, high=5)
    ends = FreshEnds(consumer, [TP, other])
    consumer.polled_ms = time.time() * 1000 + 1000  # responses after the call (clock far ahead)
    ends.poll()
    consumer.polled_ms += 1000
    ends.poll()
    assert ends.reached({TP: 5, other: 5})
    assert not FreshEnds(consumer, [TP, other]).reached({TP: 5, other: 5})
