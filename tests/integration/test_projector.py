"""The projector against real servers: Postgres outages, malformed change events, SIGTERM."""

from __future__ import annotations

import base64
import signal

import asyncpg
import pytest

from tests.integration.helpers import (
    connection,
    env_for,
    log_says,
    produce,
    read_topic,
    settings_for,
    spawn,
    values,
    wait_until,
)
from worker.dev.stack import start_postgres
from worker.events import schemas
from worker.store.postgres import forget_offsets
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

CHANGE = (
    b'{"schema":"optout.blocklist-change.v1","event_id":"0123456789abcdef0123456789abcdef",'
    b'"action":"block","scope":{"level":"account","account_id":"acme","subaccount_id":null,'
    b'"sender":null,"channel":"sms"},"address":"+15556660001","keyword":"STOP","rule":"stop",'
    b'"reason":"opt_out_keyword","source":{"topic":"mo.inbound","partition":0,"offset":7,'
    b'"message_id":"m7"},"occurred_at":"2026-11-24T12:00:00.000000Z","emitted_at":"2026-11-24T12:00:00.100000Z"}'
)


async def test_malformed_change_events_are_dead_lettered(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    bad_time = CHANGE.replace(b"2026-11-24T12:00:00.000000Z", b"yesterday").replace(b"0123", b"4567")
    await produce(
        broker,
        topics.changes,
        [(b"k1", b"not json", 0), (b"k2", CHANGE, 0), (b"k3", b'{"x":1}', 0), (b"k4", bad_time, 0)],
    )
    stats = await run_projector(settings_for(broker, topics, group_suffix), database_url, burst=True)
    assert stats.records == 4
    dead = values(await read_topic(broker, topics.dead_letter))
    codes = sorted(d["error"]["code"] for d in dead)
    assert codes == ["invalid_change", "invalid_change", "invalid_timestamp"]
    assert {d["stage"] for d in dead} == {"projector"}
    for letter in dead:
        schemas.validator(schemas.DEAD_LETTER).validate(letter)
    dead = [d for d in dead if d["error"]["code"] == "invalid_change"]
    assert sorted(base64.b64decode(d["value_b64"]) for d in dead) == [b"not json", b'{"x":1}']
    async with connection(database_url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM blocklist_history") == 1


async def test_waits_for_postgres_then_applies(
    broker: str, topics: Topics, group_suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Postgres down at start: one 'unavailable' line, retries, then everything is applied."""
    data = tmp_path_factory.mktemp("late") / "pg"
    url = f"postgresql://postgres:@/postgres?host={data}"
    await produce(broker, topics.changes, [(b"k", CHANGE, 1)])
    log = tmp_path_factory.mktemp("logs") / "projector.log"
    child = spawn("projector", env_for(broker, topics, group_suffix, url), log)
    server = None
    try:
        # Postgres starts only once the projector has found it missing (not after a fixed sleep,
        # which a slow machine outlasts while the projector is still importing).
        await wait_until(
            lambda: log_says(log, "Postgres unavailable"), 60, "the projector to find no Postgres"
        )
        assert child.poll() is None, log.read_text()
        server = start_postgres(data, cleanup_mode="delete")
        assert server.url == url

        async def applied() -> bool:
            try:
                conn = await asyncpg.connect(url)
            except (OSError, asyncpg.PostgresError):
                return False
            try:
                return bool(await conn.fetchval("SELECT count(*) FROM blocklist_state WHERE active"))
            except asyncpg.UndefinedTableError:
                return False
            finally:
                await conn.close()

        await wait_until(applied, 60, "the projector to apply after Postgres came up")
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
        if server is not None:
            server.server.cleanup()
    text = log.read_text()
    assert text.count("Postgres unavailable") == 1, text
    assert "Postgres available again" in text
    assert "Traceback" not in text


async def test_resumes_from_the_offsets_stored_in_postgres(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """Postgres, not Kafka, says where to resume: a stored offset of 1 skips offset 0."""
    second = CHANGE.replace(b"+15556660001", b"+15556660002").replace(b"0123", b"89ab")
    await produce(broker, topics.changes, [(b"a", CHANGE, 2), (b"b", second, 2)])
    settings = settings_for(broker, topics, group_suffix)
    async with connection(database_url) as conn:
        await conn.execute(
            "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, 2, 1)",
            settings.projector_group_id,
            topics.changes,
        )
        stats = await run_projector(settings, database_url, burst=True)
        addresses = [r["address"] for r in await conn.fetch("SELECT address FROM blocklist_state")]
        stored = await conn.fetchval(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND partition = 2",
            settings.projector_group_id,
        )
    assert stats.records == 1
    assert addresses == ["+15556660002"]
    assert stored == 2


async def test_a_stored_offset_past_the_end_replays_the_partition(
    broker: str, topics: Topics, group_suffix: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The topic was recreated (a restarted memory-only broker): its records start at 0 again."""
    second = CHANGE.replace(b"+15556660001", b"+15556660002").replace(b"0123", b"89ab")
    await produce(broker, topics.changes, [(b"a", CHANGE, 1), (b"b", second, 1)])
    settings = settings_for(broker, topics, group_suffix)
    async with connection(database_url) as conn:
        await conn.execute(
            "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, 1, 100)",
            settings.projector_group_id,
            topics.changes,
        )
        await run_projector(settings, database_url, burst=True)
        addresses = sorted(r["address"] for r in await conn.fetch("SELECT address FROM blocklist_state"))
    assert addresses == ["+15556660001", "+15556660002"]
    assert "[1] 100 > 2 is past its end: topic recreated? replaying its 4 assigned partitions" in caplog.text


async def test_forget_offsets(database_url: str) -> None:
    async with connection(database_url) as conn:
        await conn.execute(
            "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)"
            " VALUES ('g', 'changes', 0, 5), ('g', 'changes', 1, 7), ('g', 'other', 0, 3)"
        )
        assert await forget_offsets(database_url, "changes") == 2
        assert await conn.fetchval("SELECT count(*) FROM consumer_offsets") == 1
