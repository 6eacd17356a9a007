"""RunStats: what a run did, and what a long-running worker must not keep."""

from __future__ import annotations

from worker.stream.loop import RunStats


def test_a_burst_run_keeps_each_batch_duration() -> None:
    stats = RunStats()
    for started in (0.0, 0.0, 0.0):
        stats.batch_done(10, started)
    assert stats.records == 30
    assert stats.batches == 3
    assert len(stats.batch_seconds) == 3


def test_a_running_worker_counts_batches_without_keeping_their_durations() -> None:
    stats = RunStats(keeps_durations=False)
    for _ in range(1000):
        stats.batch_done(10, 0.0)
    assert stats.records == 10_000
    assert stats.batches == 1000
    assert stats.batch_seconds == []  # unbounded otherwise: one float per batch for days
    assert stats.first_record_at == 0.0
    assert stats.last_batch_done_at is not None
