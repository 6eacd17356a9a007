"""Where the confirmation tail counts as caught up (worker.stream.recent)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from worker.stream.recent import _readable_end

TP = TopicPartition("blocklist.changes", 0)


@dataclass
class _Offsets:
    """What aiokafka's consumer reports from its last fetch response for one partition."""

    stable: int | None
    high: int | None

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self.stable

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high


def test_an_open_transaction_is_not_waited_for() -> None:
    # A killed classifier's transaction holds the last stable offset at 40 while 55 records exist:
    # a read_committed reader can get to 40, and that is caught up.
    assert _readable_end(_Offsets(stable=40, high=55), TP) == 40


@pytest.mark.parametrize(("stable", "high", "end"), [(-1, 55, 55), (None, 55, 55), (-1, None, 0)])
def test_without_a_last_stable_offset_the_high_watermark_is_the_end(
    stable: int | None, high: int | None, end: int
) -> None:
    # read_uncommitted answers -1 and older brokers None: the high watermark is what can be read.
    assert _readable_end(_Offsets(stable, high), TP) == end
