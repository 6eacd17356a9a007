"""worker.stream.loop.PendingCommits: at-least-once offsets committed at most every interval, and
never lost to a rebalance or a stop (the classifier takes what is pending at both)."""

from __future__ import annotations

import time

import pytest
from aiokafka import TopicPartition

from worker.stream.loop import PendingCommits

A, B = TopicPartition("in", 0), TopicPartition("in", 1)


def test_nothing_pending_is_never_due() -> None:
    assert not PendingCommits(0).due()


def test_interval_zero_commits_after_every_batch() -> None:
    pending = PendingCommits(0)
    pending.add({A: 10})
    assert pending.due()
    assert pending.take() == {A: 10}
    assert not pending.due()


def test_offsets_wait_for_the_interval_and_the_newest_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    pending = PendingCommits(100)
    pending.add({A: 10})
    pending.add({A: 20, B: 5})
    assert not pending.due()
    now[0] += 0.099
    assert not pending.due()
    now[0] += 0.002
    assert pending.due()
    assert pending.take() == {A: 20, B: 5}
    pending.add({B: 6})
    assert not pending.due(), "the interval starts again at each commit"
    now[0] += 0.1
    assert pending.due()


def test_a_revoked_partition_takes_only_its_own_offsets() -> None:
    pending = PendingCommits(60_000)
    pending.add({A: 20, B: 5})
    assert pending.take({A, TopicPartition("in", 9)}) == {A: 20}
    assert pending.positions == {B: 5}
    assert pending.take({A}) == {}
    assert pending.take() == {B: 5}
    assert pending.positions == {}
