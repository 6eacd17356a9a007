"""KIP-447's two requests as the broker reads and answers them (:mod:`worker.stream.group_txn`):
encoded with aiokafka's flexible-version types, decoded with the same schemas."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiokafka import TopicPartition, errors

from worker.stream.group_txn import (
    NEEDED,
    OFFSET_FETCH,
    TXN_OFFSET_COMMIT,
    UNSTABLE_OFFSET_COMMIT,
    GroupTxnOffsetCommit,
    StableOffsetFetch,
    offsets_answered,
    supports_group_fencing,
)

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
KAFKA_4 = {TXN_OFFSET_COMMIT: (0, 5), OFFSET_FETCH: (1, 9)}


def _sent(request: Any, versions: dict[int, tuple[int, int]]) -> tuple[Any, dict[str, Any]]:
    """The struct a connection with ``versions`` would send, and what the broker decodes of it."""
    struct = request.prepare(versions)
    decoded = type(struct).SCHEMA.decode(io.BytesIO(struct.encode()))
    return struct, dict(zip(type(struct).SCHEMA.names, decoded, strict=True))


def test_the_offset_commit_carries_the_generation_and_member() -> None:
    request = GroupTxnOffsetCommit("g-1f2e", "g", (4001, 7), (12, "member-9"), {A1: 30, B0: 5, A0: 10})
    struct, fields = _sent(request, KAFKA_4)
    assert (struct.API_KEY, struct.API_VERSION, struct.FLEXIBLE_VERSION) == (28, 3, True)
    assert fields["transactional_id"] == "g-1f2e"
    assert (fields["producer_id"], fields["producer_epoch"]) == (4001, 7)
    assert (fields["generation_id"], fields["member_id"], fields["group_instance_id"]) == (
        12,
        "member-9",
        None,
    )
    topics = {topic: [p[:2] for p in partitions] for topic, partitions, _ in fields["topics"]}
    assert topics == {"a": [(0, 10), (1, 30)], "b": [(0, 5)]}


def test_the_offset_fetch_requires_stable_offsets() -> None:
    struct, fields = _sent(StableOffsetFetch("g", [B0, A1, A0]), KAFKA_4)
    assert (struct.API_KEY, struct.API_VERSION) == (9, 7)
    assert fields["require_stable"] is True
    assert [(topic, indexes) for topic, indexes, _ in fields["topics"]] == [("a", [0, 1]), ("b", [0])]


def test_a_broker_needs_both_requests_at_their_versions() -> None:
    assert supports_group_fencing(KAFKA_4)
    assert not supports_group_fencing({TXN_OFFSET_COMMIT: (0, 2), OFFSET_FETCH: (0, 9)})  # Kafka 2.4
    assert not supports_group_fencing({TXN_OFFSET_COMMIT: (0, 3), OFFSET_FETCH: (0, 6)})
    assert not supports_group_fencing({OFFSET_FETCH: (0, 9)})  # no transactions at all
    assert NEEDED == {TXN_OFFSET_COMMIT: 3, OFFSET_FETCH: 7}


def _fetch_answer(partitions: list[tuple[int, int, int]], error_code: int = 0) -> Any:
    from worker.stream.group_txn import _OffsetFetchResponse_v7 as Response

    rows: list[tuple[Any, ...]] = [(index, offset, -1, "", code, {}) for index, offset, code in partitions]
    encoded = Response.SCHEMA.encode((0, [("in", rows, {})], error_code, {}))
    return Response.decode(io.BytesIO(encoded))


def test_an_answer_splits_stable_and_unstable_offsets() -> None:
    answer = _fetch_answer([(0, 42, 0), (1, -1, 0), (2, 7, UNSTABLE_OFFSET_COMMIT)])
    offsets, unstable, error_code = offsets_answered(answer)
    assert offsets == {TopicPartition("in", 0): 42, TopicPartition("in", 1): None}  # -1: nothing committed
    assert unstable == [TopicPartition("in", 2)]
    assert error_code == 0


def test_another_partition_error_is_raised() -> None:
    with pytest.raises(errors.GroupAuthorizationFailedError):
        offsets_answered(_fetch_answer([(0, 1, errors.GroupAuthorizationFailedError.errno)]))
