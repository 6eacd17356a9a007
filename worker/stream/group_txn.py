"""The two halves of KIP-447 that aiokafka 0.14 lacks, so that one transactional producer can serve
all of a classifier process's input partitions safely (:mod:`worker.stream.process_delivery`).

- **TxnOffsetCommit v3** carries the consumer's group generation and member id. The group
  coordinator refuses the offsets of a member that a rebalance has left behind (a "zombie": it
  answers ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID), so the zombie's transaction can only abort:
  its output is never visible. aiokafka sends v0, which carries neither, so nothing stops a zombie
  but a transactional id per partition (:mod:`worker.stream.delivery`).
- **OffsetFetch v7** with ``require_stable``: while a transaction that holds offsets of a
  partition is still completing, the coordinator answers UNSTABLE_OFFSET_COMMIT for it instead of
  the previous offset. A new owner asks again until the offset is final, so it never redoes a
  batch that its previous owner committed a moment ago. aiokafka stops at v3.

:func:`bind_group` puts the v3 commit into one producer (``send_offsets_to_transaction`` then raises
one of :data:`GROUP_FENCED` when the group has moved on); :func:`fetch_stable` is the v7 fetch;
:func:`supports_group_fencing` tells whether a broker has both (Apache Kafka 2.5 and later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import TopicPartition, errors
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)

TXN_OFFSET_COMMIT = 28
OFFSET_FETCH = 9
#: The first versions with the group's generation (TxnOffsetCommit) and ``require_stable`` (OffsetFetch).
NEEDED = {TXN_OFFSET_COMMIT: 3, OFFSET_FETCH: 7}

#: What ``send_offsets_to_transaction`` raises when the group no longer counts this member as the
#: owner of the partitions: the transaction must be aborted and the partitions left to their new
#: owner (REBALANCE_IN_PROGRESS too: the next assignment says whether they are still ours). No
#: FENCED_INSTANCE_ID: the classifier is not a static member (no ``group.instance.id``).
GROUP_FENCED: tuple[type[errors.KafkaError], ...] = (
    errors.IllegalGenerationError,
    errors.UnknownMemberIdError,
    errors.RebalanceInProgressError,
)

UNSTABLE_OFFSET_COMMIT = 88
#: Seconds between OffsetFetch attempts while an offset is unstable: a transaction's markers take a
#: few milliseconds to write, a crashed producer's transaction until it times out.
UNSTABLE_RETRY = (0.005, 0.5)

GroupMember = Callable[[], tuple[int, str]]
"""The consumer's current (generation id, member id)."""


def _rows(*fields: tuple[str, Any]) -> CompactArray:
    """A flexible version's array of structs: each ends with its tagged fields."""
    return CompactArray(*fields, ("tags", TaggedFields))


def _per_topic(partitions: Any) -> CompactArray:
    """The topics array every request and answer here has: a name, then its partitions."""
    return _rows(("topic", CompactString("utf-8")), ("partitions", partitions))


#: A partition's offset, as both the commit and the fetch's answer carry it.
_OFFSET = (
    ("partition", Int32),
    ("offset", Int64),
    ("leader_epoch", Int32),
    ("metadata", CompactString("utf-8")),
)


class _TxnOffsetCommitResponse_v3(Response):  # type: ignore[misc]  # noqa: N801 (aiokafka's names)
    API_KEY = TXN_OFFSET_COMMIT
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", _per_topic(_rows(("partition", Int32), ("error_code", Int16)))),
        ("tags", TaggedFields),
    )


class _TxnOffsetCommitRequest_v3(RequestStruct):  # type: ignore[misc]  # noqa: N801
    FLEXIBLE_VERSION = True
    API_KEY = TXN_OFFSET_COMMIT
    API_VERSION = 3
    RESPONSE_TYPE = _TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),
        (
            "topics",
            _per_topic(_rows(*_OFFSET)),
        ),
        ("tags", TaggedFields),
    )


class GroupTxnOffsetCommit(Request[_TxnOffsetCommitRequest_v3]):  # type: ignore[misc]
    """TxnOffsetCommit v3: the offsets, with the member's generation and id."""

    API_KEY = TXN_OFFSET_COMMIT

    def __init__(
        self,
        transactional_id: str,
        group_id: str,
        producer: tuple[int, int],
        member: tuple[int, str],
        offsets: dict[TopicPartition, int],
    ) -> None:
        self.values = (transactional_id, group_id, *producer, *member)
        by_topic: dict[str, list[tuple[int, int, int, str, dict[int, bytes]]]] = {}
        for tp, offset in sorted(offsets.items()):
            by_topic.setdefault(tp.topic, []).append((tp.partition, offset, -1, "", {}))
        self.topics: list[tuple[str, list[Any], dict[int, bytes]]] = [
            (topic, partitions, {}) for topic, partitions in by_topic.items()
        ]

    def build(self, request_struct_class: type[_TxnOffsetCommitRequest_v3]) -> _TxnOffsetCommitRequest_v3:
        return request_struct_class(*self.values, None, self.topics, {})


class _OffsetFetchResponse_v7(Response):  # type: ignore[misc]  # noqa: N801
    API_KEY = OFFSET_FETCH
    API_VERSION = 7
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            _per_topic(_rows(*_OFFSET, ("error_code", Int16))),
        ),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class _OffsetFetchRequest_v7(RequestStruct):  # type: ignore[misc]  # noqa: N801
    FLEXIBLE_VERSION = True
    API_KEY = OFFSET_FETCH
    API_VERSION = 7
    RESPONSE_TYPE = _OffsetFetchResponse_v7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        ("topics", _per_topic(CompactArray(Int32))),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetch(Request[_OffsetFetchRequest_v7]):  # type: ignore[misc]
    """OffsetFetch v7 with ``require_stable``."""

    API_KEY = OFFSET_FETCH

    def __init__(self, group_id: str, partitions: Iterable[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        self.group_id = group_id
        self.topics: list[tuple[str, list[int], dict[int, bytes]]] = [
            (topic, indexes, {}) for topic, indexes in by_topic.items()
        ]

    def build(self, request_struct_class: type[_OffsetFetchRequest_v7]) -> _OffsetFetchRequest_v7:
        return request_struct_class(self.group_id, self.topics, True, {})


def supports_group_fencing(versions: dict[int, tuple[int, int]]) -> bool:
    """Whether a broker's ApiVersions (api key -> (min, max)) has both requests at their needed
    version."""
    return all(key in versions and versions[key][0] <= v <= versions[key][1] for key, v in NEEDED.items())


def offsets_answered(response: Any) -> tuple[dict[TopicPartition, int | None], list[TopicPartition], int]:
    """An OffsetFetch v7 answer: the stable offsets (None: nothing committed), the partitions still
    unstable, and the top-level error code. Any other partition error is raised."""
    offsets: dict[TopicPartition, int | None] = {}
    unstable: list[TopicPartition] = []
    for topic, partitions, _ in response.topics:
        for partition, offset, _epoch, _metadata, error_code, _ in partitions:
            tp = TopicPartition(topic, partition)
            if error_code == UNSTABLE_OFFSET_COMMIT:
                unstable.append(tp)
            elif error_code:
                raise errors.for_code(error_code)(f"OffsetFetch of {tp.topic}[{tp.partition}]")
            else:
                offsets[tp] = offset if offset >= 0 else None
    return offsets, unstable, response.error_code


async def fetch_stable(
    consumer: Any, group_id: str, partitions: Iterable[TopicPartition], stop: asyncio.Event
) -> dict[TopicPartition, int | None] | None:
    """The committed offset of each of ``partitions`` once no transaction holding one is still
    completing (None: nothing committed); None if ``stop`` is set first. Coordinator moves and
    loads are waited out like aiokafka's own fetch; a broker error is raised for the caller's
    backoff."""
    coordinator = consumer._coordinator
    wanted = set(partitions)
    found: dict[TopicPartition, int | None] = {}
    pause = UNSTABLE_RETRY[0]
    while wanted:
        if stop.is_set():
            return None
        await coordinator.ensure_coordinator_known()
        node = coordinator.coordinator_id
        response = await consumer._client.send(node, StableOffsetFetch(group_id, wanted))
        offsets, unstable, error_code = offsets_answered(response)
        if error_code in (
            errors.NotCoordinatorForGroupError.errno,
            errors.GroupCoordinatorNotAvailableError.errno,
        ):
            coordinator.coordinator_dead()
            continue
        if error_code == errors.CoordinatorLoadInProgressError.errno:
            await asyncio.sleep(pause)
            continue
        if error_code:
            raise errors.for_code(error_code)(f"OffsetFetch for group {group_id}")
        found.update(offsets)
        wanted = set(unstable)
        if wanted:
            await asyncio.sleep(pause)
            pause = min(pause * 2, UNSTABLE_RETRY[1])
    return found


def bind_group(producer: Any, member: GroupMember) -> None:
    """Make ``producer`` commit offsets with TxnOffsetCommit v3, carrying ``member()`` as it is
    when the request is built (Java's ``sendOffsetsToTransaction(offsets, groupMetadata)``).

    aiokafka's sender looks up ``_do_txn_offset_commit`` on itself, so this producer's sender gets
    its own; every other producer keeps aiokafka's."""
    from aiokafka.producer.sender import CoordinationType, TxnOffsetCommitHandler

    sender = producer._sender

    class GroupOffsetCommitHandler(TxnOffsetCommitHandler):  # type: ignore[misc]
        def create_request(self) -> GroupTxnOffsetCommit:
            manager = self._sender._txn_manager
            offsets = {tp: meta.offset for tp, meta in self._offsets.items()}
            producer_ids = (manager.producer_id, manager.producer_epoch)
            return GroupTxnOffsetCommit(
                manager.transactional_id, self._group_id, producer_ids, member(), offsets
            )

        def handle_response(self, resp: Any) -> float | None:
            manager = self._sender._txn_manager
            for topic, partitions, _ in resp.topics:
                for partition, error_code, _ in partitions:
                    tp = TopicPartition(topic, partition)
                    error = errors.for_code(error_code)
                    if error is errors.NoError:
                        manager.offset_committed(tp, self._offsets[tp].offset, self._group_id)
                    elif error in GROUP_FENCED:
                        manager.error_transaction(error(f"{self._group_id}: {tp.topic}[{tp.partition}]"))
                        return None
                    elif error in (
                        errors.CoordinatorNotAvailableError,
                        errors.NotCoordinatorError,
                        errors.RequestTimedOutError,
                    ):
                        self._sender._coordinator_dead(CoordinationType.GROUP)
                        return float(self._default_backoff)
                    elif error in (
                        errors.CoordinatorLoadInProgressError,
                        errors.UnknownTopicOrPartitionError,
                        errors.ConcurrentTransactions,
                    ):
                        return float(self._default_backoff)
                    elif error is errors.InvalidProducerEpoch:
                        raise errors.ProducerFenced()
                    else:
                        raise error()
            return None

    async def do_txn_offset_commit(offsets: Any, group_id: str) -> None:
        if not offsets:
            return
        try:
            node_id = await sender._find_coordinator(CoordinationType.GROUP, group_id)
        except errors.GroupAuthorizationFailedError as exc:
            sender._txn_manager.error_transaction(exc)
            return
        await GroupOffsetCommitHandler(sender, offsets, group_id).do(node_id)

    sender._do_txn_offset_commit = do_txn_offset_commit


def group_member(consumer: Any) -> GroupMember:
    """The consumer's current generation and member id, read each time."""
    coordinator = consumer._coordinator
    return lambda: (int(coordinator.generation), str(coordinator.member_id))
