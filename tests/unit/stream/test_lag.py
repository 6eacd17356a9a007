"""The lag gauge after a batch (worker.stream.loop.update_lag)."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from worker.ops.metrics import ClassifierMetrics
from worker.stream.loop import update_lag

KEPT, REVOKED = TopicPartition("mo.inbound", 0), TopicPartition("mo.inbound", 1)


class _Consumer:
    """aiokafka's consumer as update_lag sees it: ``highwater()`` asserts on a partition it no
    longer holds, as aiokafka 0.14 does."""

    def assignment(self) -> set[TopicPartition]:
        return {KEPT}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp == KEPT, "Partition is not assigned"
        return 120


def test_a_partition_revoked_during_the_batch_is_skipped_not_fatal() -> None:
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    update_lag(_Consumer(), metrics, {KEPT: 100, REVOKED: 50})
    lag = registry.get_sample_value("optout_consumer_lag_records", {"topic": "mo.inbound", "partition": "0"})
    assert lag == 20
    assert (
        registry.get_sample_value("optout_consumer_lag_records", {"topic": "mo.inbound", "partition": "1"})
        is None
    )
