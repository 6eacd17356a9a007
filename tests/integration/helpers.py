"""Small real-Kafka helpers for the integration tests (produce, read a whole topic, settings)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.unit.factories import change_event, inbound_json
from worker.classify.scope import change_key
from worker.config import Settings
from worker.dev.stack import with_database
from worker.events.ordering import latest_per_block
from worker.events.outgoing import decode_change, derive_id, encode_change
from worker.model import ChangeEvent, Source
from worker.snapshot.manifest import Manifest
from worker.snapshot.schedule import take_snapshot
from worker.store.postgres import Store
from worker.stream.topics import Topics

REPO = Path(__file__).resolve().parents[2]


def env_for(broker: str, topics: Topics, suffix: str, database_url: str = "") -> dict[str, str]:
    return {
        "OPTOUT_KAFKA_BOOTSTRAP": broker,
        "OPTOUT_TOPIC_INBOUND": topics.inbound,
        "OPTOUT_TOPIC_CHANGES": topics.changes,
        "OPTOUT_TOPIC_REPLIES": topics.replies,
        "OPTOUT_TOPIC_DEAD_LETTER": topics.dead_letter,
        "OPTOUT_TOPIC_REVIEW": topics.review,
        "OPTOUT_GROUP_ID": f"classifier-{suffix}",
        "OPTOUT_PROJECTOR_GROUP_ID": f"projector-{suffix}",
        "OPTOUT_DATABASE_URL": database_url,
        "OPTOUT_METRICS_PORT": "0",
        "OPTOUT_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "OPTOUT_BURST_IDLE_MS": "1000",
        "OPTOUT_POLL_TIMEOUT_MS": "100",
        # Tests that want snapshots ask for them; the others must not write into the working tree.
        "OPTOUT_SNAPSHOT_INTERVAL": "0",
    }


def settings_for(broker: str, topics: Topics, suffix: str, **extra: str) -> Settings:
    return Settings.from_mapping(env_for(broker, topics, suffix) | extra)


def mo(
    message_id: str,
    text: str,
    address: str = "+15550000001",
    *,
    account: str = "acme",
    sender: str = "12345",
    channel: str = "sms",
    subaccount: str | None = None,
    received_at: str = "2026-11-24T12:00:00Z",
) -> bytes:
    """An inbound message as a record value (see :func:`tests.unit.factories.inbound_doc`)."""
    return inbound_json(
        text,
        message_id=message_id,
        channel=channel,
        address=address,
        sender=sender,
        account=account,
        subaccount=subaccount,
        received_at=received_at,
    )


async def produce(
    broker: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None, int | None]]
) -> None:
    """Send (key, value, partition) records and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, partition=partition)
            for key, value, partition in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """One connection to a test's database (see the ``database_url`` fixture), closed on the way out."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def read_topic(broker: str, topic: str, idle_ms: int = 700) -> list[Any]:
    """Every committed record of ``topic`` from the beginning, until no more arrive for ``idle_ms``
    (read_committed, like every reader of the classifier's exactly-once output)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_ms / 1000:
            batch = await consumer.getmany(timeout_ms=100)
            for part in batch.values():
                records.extend(part)
            if batch:
                idle_since = time.monotonic()
        return records
    finally:
        await consumer.stop()


def values(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


async def committed(broker: str, group: str, topic: str, partitions: int = 4) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()


def spawn(command: str, env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Run ``optout COMMAND`` as a real child process (for kill -9 and SIGTERM tests)."""
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "worker", command, *args],
            env=os.environ | dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )


async def log_says(path: Path, text: str) -> bool:
    """Whether the log at ``path`` holds ``text`` yet: for :func:`wait_until`, instead of a fixed
    sleep that a slow machine outlasts (a worker still importing when the sleep ends)."""
    return path.exists() and text in path.read_text()


async def wait_until(predicate: Any, seconds: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def change(
    address: str,
    action: str,
    *,
    at: str = "2026-11-24T12:00:00.000000Z",
    event_id: str | None = None,
    level: str = "account",
    account: str = "acme",
    scope_id: str | None = None,
    channel: str = "sms",
) -> ChangeEvent:
    """A change event as the classifier would emit it (ids unique per address/action/time/scope)."""
    block = action == "block"
    return change_event(
        address,
        action,
        level=level,
        account=account,
        scope_id=scope_id,
        channel=channel,
        at=at,
        event_id=event_id or derive_id(address, action, at, level, account, scope_id or "", channel),
        keyword="STOP" if block else "START",
        rule="stop" if block else "start",
        reason="opt_out_keyword" if block else "opt_in_keyword",
        source=Source("mo.inbound", 0, 0, f"m-{address}-{at}"),
    )


def change_records(events: Iterable[ChangeEvent]) -> list[tuple[bytes | None, bytes | None, int | None]]:
    """(key, value, partition) for :func:`produce`: keyed by block identity like the classifier."""
    return [(change_key(e), encode_change(e, "2026-11-24T12:00:00.000000Z"), None) for e in events]


def expected_state(records: Iterable[Any]) -> dict[bytes, ChangeEvent]:
    """Last-writer-wins over consumed change records: what Postgres and every view must converge on."""
    return latest_per_block((change_key(e), e) for e in (decode_change(r.value) for r in records))


def identity(e: ChangeEvent) -> tuple[str, ...]:
    """A block as a snapshot line / state row names it."""
    return (
        e.address,
        e.scope.account_id,
        e.scope.level.value,
        e.scope.subaccount_id or "",
        e.scope.sender or "",
        e.scope.channel,
        e.occurred_at,
        e.event_id,
    )


def random_changes(rng: random.Random, count: int, start: int = 0) -> list[ChangeEvent]:
    """STOPs and STARTs on a few hundred addresses, timestamps deliberately out of order."""
    return [
        change(
            f"+1555{rng.randrange(300):07d}",
            rng.choice(["block", "block", "unblock"]),
            at=f"2026-11-24T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{start + i:06d}Z",
            level=rng.choice(["account", "subaccount", "sender"]),
            scope_id=rng.choice(["s1", "s2"]),
            channel=rng.choice(["sms", "*"]),
        )
        for i in range(count)
    ]


async def snapshot(settings: Settings, database_url: str) -> Manifest:
    async with await Store.connect(database_url) as store:
        return (await take_snapshot(settings, store)).manifest


async def recreate_topic(
    broker: str, topic: str, partitions: int = 4, configs: Mapping[str, str] | None = None
) -> None:
    """Delete ``topic`` and create it again, empty (what a restarted memory-only broker or an
    operator's delete-and-create does). Apache Kafka deletes asynchronously: create is retried
    while it still answers TOPIC_ALREADY_EXISTS, then we wait until the new topic has leaders."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 30
        while True:
            response = await admin.create_topics(
                [NewTopic(topic, partitions, 1, topic_configs=dict(configs or {"cleanup.policy": "compact"}))]
            )
            code = response.topic_errors[0][1]
            if code == 0:
                break
            assert code == 36, f"create {topic}: error {code}"  # still being deleted: try again
            assert time.monotonic() < deadline, f"{topic} was still being deleted after 30 s"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    # The new incarnation is ready once a producer can write to every partition of it.
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        deadline = time.monotonic() + 30
        while len(await producer.partitions_for(topic)) < partitions:
            assert time.monotonic() < deadline, f"{topic} has no {partitions} partitions"
            await asyncio.sleep(0.2)
            await producer.client.force_metadata_update()
    finally:
        await producer.stop()


def on_partitions(
    events: Iterable[ChangeEvent], partitions: Iterable[int]
) -> list[tuple[bytes | None, bytes | None, int | None]]:
    """:func:`change_records` with an explicit partition for each event (in order)."""
    return [(key, value, p) for (key, value, _), p in zip(change_records(events), partitions, strict=True)]


@contextlib.asynccontextmanager
async def cloned_database(postgres_url: str, template: str, prefix: str) -> AsyncIterator[str]:
    """A new database cloned from the migrated ``template`` (fast), dropped on the way out."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(postgres_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_topics(broker: str) -> Topics:
    """uuid-named topics (4 partitions each; the change topic compacted), created on ``broker``."""
    suffix = uuid.uuid4().hex[:10]
    names = Topics(
        inbound=f"mo.inbound.{suffix}",
        changes=f"blocklist.changes.{suffix}",
        replies=f"optout.replies.{suffix}",
        dead_letter=f"mo.inbound.dlq.{suffix}",
        review=f"optout.review.{suffix}",
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(names.inbound, 4, 1),
                NewTopic(names.changes, 4, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(names.replies, 4, 1),
                NewTopic(names.dead_letter, 4, 1),
                NewTopic(names.review, 4, 1),
            ]
        )
    finally:
        await admin.close()
    return names
