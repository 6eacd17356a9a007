"""A session's Apache Kafka broker for the delivery and security tests, and their small helpers.

:func:`run_apache_kafka` is the body of a session fixture; define that fixture in one test module
only (a fixture found in two modules is two session fixtures, i.e. two brokers). The broker has
a PLAINTEXT listener, a SASL_SSL listener with SCRAM-SHA-512 (user :data:`USER`) and an SSL
listener that requires a client certificate, all with a CA made for this session; its data lives
in pytest's private base temp dir and it is stopped by the fixture's finalizer. Without Java (or
without Maven while the jars are not cached) every test that uses it is skipped, with the one
reason :func:`missing_tools` gives.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from worker.dev.kafka_broker import KafkaBroker, cached_libs, missing_tools
from worker.stream.topics import Topics

USER, PASSWORD = "optout", "right-password-1"


def run_apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    missing = missing_tools(need_maven=cached_libs() is None)
    if missing is not None:
        pytest.skip(f"Apache Kafka tests skipped: {missing}")
    broker = KafkaBroker(
        tmp_path_factory.mktemp("apache-kafka"),
        scram_users={USER: PASSWORD},
        mtls=True,
        # A killed classifier's open transactions are aborted by the next owner's InitProducerId;
        # this only bounds a transaction nobody takes over.
        config={
            "transaction.max.timeout.ms": "900000",
            # The tests' classifiers use a 2 s session (helpers.env_for); Kafka's floor is 6 s.
            "group.min.session.timeout.ms": "500",
        },
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def create_topics(bootstrap: str, partitions: int = 4, **client: Any) -> Topics:
    """uuid-named topics (the change topic compacted), created and visible in the metadata."""
    suffix = uuid.uuid4().hex[:10]
    names = Topics(
        inbound=f"mo.inbound.{suffix}",
        changes=f"blocklist.changes.{suffix}",
        replies=f"optout.replies.{suffix}",
        dead_letter=f"mo.inbound.dlq.{suffix}",
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(names.inbound, partitions, 1),
                NewTopic(names.changes, partitions, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(names.replies, partitions, 1),
                NewTopic(names.dead_letter, partitions, 1),
            ]
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            described = await admin.describe_topics(
                [names.inbound, names.changes, names.replies, names.dead_letter]
            )
            if all(t["error_code"] == 0 and len(t["partitions"]) == partitions for t in described):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return names


async def no_open_transactions(bootstrap: str, topics: list[str], seconds: float = 60.0) -> float:
    """Wait until no transaction is open on ``topics`` (each partition's last stable offset, what
    a read_committed reader reads up to, has reached its high watermark); the seconds waited.

    A classifier killed with a transaction open leaves it open until its transactional id is used
    again (a producer per partition: at the next owner's start) or the transaction coordinator
    times it out (a producer per process: ``transaction.timeout.ms``, checked every 10 s), and
    until then read_committed readers see nothing after its first record."""
    began = time.monotonic()
    readers = {
        level: AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level, enable_auto_commit=False)
        for level in ("read_committed", "read_uncommitted")
    }
    for reader in readers.values():
        await reader.start()
    try:
        reader = readers["read_committed"]
        for topic in topics:
            reader._client.add_topic(topic)  # track unsubscribed topics' metadata, as read_all does
        await reader._client.force_metadata_update()
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        assert len(tps) >= len(topics), f"no partitions known for {topics}"
        while True:
            stable = await readers["read_committed"].end_offsets(tps)
            high = await readers["read_uncommitted"].end_offsets(tps)
            if stable == high:
                return time.monotonic() - began
            if time.monotonic() - began > seconds:
                raise AssertionError(f"transactions still open after {seconds}s: {stable} < {high}")
            await asyncio.sleep(0.5)
    finally:
        for reader in readers.values():
            await reader.stop()


async def read_all(
    bootstrap: str,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    seconds: float = 60.0,
    **client: Any,
) -> list[Any]:
    """Every record of ``topic`` up to its end as this reader sees it (the last stable offset for
    read_committed: transaction markers and aborted records are skipped, not returned)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        **client,
    )
    await consumer.start()
    try:
        partitions: set[int] | None = None
        deadline = time.monotonic() + seconds
        consumer._client.add_topic(topic)  # track an unsubscribed topic's metadata
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True)):
                return records
            for part in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(part)
        raise AssertionError(f"could not read {topic} to its end within {seconds}s")
    finally:
        await consumer.stop()


async def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of ``group``'s committed offsets on ``topic`` (a partition without one counts 0)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for p in range(partitions):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


def duplicates(ids: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in ids:
        counts[item] = counts.get(item, 0) + 1
    return {item: n for item, n in counts.items() if n > 1}
