"""``optout block``, ``optout unblock`` and ``optout import`` as an operator runs them (real
processes), through the real broker and the projector into Postgres."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.helpers import connection, env_for, read_topic, settings_for
from worker.store.postgres import Store
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

ADDRESS = "+15550000042"


def optout(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=os.environ | env,
        capture_output=True,
        timeout=180,
        check=False,
    )


async def _project(broker: str, topics: Topics, suffix: str, database_url: str) -> None:
    await run_projector(settings_for(broker, topics, suffix), database_url, burst=True)


async def _count(database_url: str, sql: str) -> int:
    async with connection(database_url) as conn:
        value: int = await conn.fetchval(sql)
        return value


async def test_block_then_unblock_reaches_postgres_with_reason_and_note(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    env = env_for(broker, topics, group_suffix, database_url)
    scope = ["--account", "acme", "--sender", "12345", "--channel", "sms"]
    at = ["--at", "2026-12-01T10:00:00Z"]
    block = optout("block", ADDRESS, *scope, "--note", "customer called support, ticket 4711", *at, env=env)
    assert block.returncode == 0, block.stderr
    event = orjson.loads(block.stdout)
    assert (event["reason"], event["source"], event["action"]) == ("manual", None, "block")
    # The same command again at the same instant is the same change (one history row).
    again = optout("block", ADDRESS, *scope, "--note", "customer called support, ticket 4711", *at, env=env)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["event_id"] == event["event_id"]

    await _project(broker, topics, group_suffix, database_url)
    async with await Store.connect(database_url) as store:
        blocks = await store.check(ADDRESS, "acme", sender="12345", channel="sms")
        other_sender = await store.check(ADDRESS, "acme", sender="99999", channel="sms")
    assert [(b["reason"], b["note"], b["level"], b["event_id"]) for b in blocks] == [
        ("manual", "customer called support, ticket 4711", "sender", event["event_id"])
    ]
    assert other_sender == []
    history = optout("history", ADDRESS, env=env)
    assert history.returncode == 0, history.stderr
    rows = [orjson.loads(line) for line in history.stdout.splitlines()]
    assert [(r["action"], r["reason"], r["note"], r["source"]["topic"]) for r in rows] == [
        ("block", "manual", "customer called support, ticket 4711", None)
    ]

    unblock = optout("unblock", ADDRESS, *scope, "--note", "consent on file", env=env)
    assert unblock.returncode == 0, unblock.stderr
    await _project(broker, topics, group_suffix, database_url)
    async with await Store.connect(database_url) as store:
        assert await store.check(ADDRESS, "acme", sender="12345", channel="sms") == []
        history_rows = await store.history(ADDRESS)
    assert [(r["action"], r["note"]) for r in history_rows] == [
        ("block", "customer called support, ticket 4711"),
        ("unblock", "consent on file"),
    ]


def _import_file(path: Path, bad: dict[int, str]) -> None:
    """1000 data lines after the header (physical lines 2-1001); ``bad``: line number -> its text."""
    lines = ["address,account,subaccount,sender,channel,category,action,note\n"]
    for i in range(1000):
        number = i + 2
        if number in bad:
            lines.append(bad[number])
            continue
        sub, sender = ("", "") if i % 3 == 0 else (("north", "") if i % 3 == 1 else ("", "12345"))
        channel = "sms" if i % 2 else ""
        category = "marketing" if i % 5 == 0 else ""
        lines.append(f"+1555{i:07d},acme,{sub},{sender},{channel},{category},,\n")
    path.write_text("".join(lines), encoding="utf-8")


async def test_import_produces_the_good_lines_reports_the_bad_and_runs_again_without_duplicates(
    broker: str, broker_kind: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    env = env_for(broker, topics, group_suffix, database_url)
    bad = {
        101: "+15559999991,,,,,,,\n",  # no account
        502: "+15559999992,acme,north,12345,sms,,,\n",  # a subaccount and a sender
        1001: "+15559999993,acme,,,sms,promotional,,\n",  # no such category
    }
    path = tmp_path / "crm-do-not-contact.csv"
    _import_file(path, bad)

    dry = optout("import", str(path), "--dry-run", env=env)
    assert dry.returncode == 3, dry.stderr
    assert b"dry run: 997 changes (997 block, 0 unblock)" in dry.stderr
    assert await read_topic(broker, topics.changes) == []  # a dry run produces nothing

    first = optout("import", str(path), env=env)
    assert first.returncode == 3, first.stderr
    err = first.stderr.decode()
    for line in bad:
        assert f"{path}:{line}: " in err
    assert "3 lines skipped (lines 101, 502, 1001)" in err
    how = "in one transaction" if broker_kind == "kafka" else "each acknowledged"
    assert f"produced 997 changes (997 block, 0 unblock) to {topics.changes} {how}" in err

    await _project(broker, topics, group_suffix, database_url)
    assert await _count(database_url, "SELECT count(*) FROM blocklist_state WHERE active") == 997
    assert await _count(database_url, "SELECT count(*) FROM blocklist_history") == 997
    notes = await _count(
        database_url,
        "SELECT count(*) FROM blocklist_history WHERE reason = 'import' AND note = "
        "'crm-do-not-contact.csv' AND source_topic IS NULL",
    )
    assert notes == 997
    async with await Store.connect(database_url) as store:
        (block,) = await store.check("+15550000002", "acme", sender="12345", channel="sms")
    assert (block["level"], block["sender"], block["category"]) == ("sender", "12345", "all")

    # The same import again (as after a crash half-way): the same ids, no new history rows.
    second = optout("import", str(path), env=env)
    assert second.returncode == 3, second.stderr
    await _project(broker, topics, group_suffix, database_url)
    assert await _count(database_url, "SELECT count(*) FROM blocklist_history") == 997
    records = await read_topic(broker, topics.changes)
    assert len(records) == 2 * 997
    assert len({orjson.loads(r.value)["event_id"] for r in records}) == 997


async def test_an_import_of_unblocks_lifts_blocks(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    env = env_for(broker, topics, group_suffix, database_url)
    blocks = tmp_path / "blocks.jsonl"
    blocks.write_text(
        '{"address": "+1", "account": "acme", "note": "provider export"}\n'
        '{"address": "+2", "account": "acme", "category": "marketing"}\n',
        encoding="utf-8",
    )
    unblocks = tmp_path / "unblocks.jsonl"
    unblocks.write_text('{"address": "+1", "account": "acme", "action": "unblock"}\n', encoding="utf-8")
    at = ["--at", "2026-12-01T10:00:00Z"]
    assert optout("import", str(blocks), *at, env=env).returncode == 0
    later = ["--at", "2026-12-01T11:00:00Z", "--note", "consent"]
    assert optout("import", str(unblocks), *later, env=env).returncode == 0
    await _project(broker, topics, group_suffix, database_url)
    async with await Store.connect(database_url) as store:
        assert await store.check("+1", "acme", channel="sms") == []
        (marketing,) = await store.check("+2", "acme", channel="sms")
        history = await store.history("+1")
    assert marketing["category"] == "marketing"
    assert [(r["action"], r["note"], r["occurred_at"]) for r in history] == [
        ("block", "provider export", "2026-12-01T10:00:00.000000Z"),
        ("unblock", "consent", "2026-12-01T11:00:00.000000Z"),
    ]


async def test_a_missing_change_topic_is_one_line_and_is_not_created(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    env = env_for(broker, topics, group_suffix) | {"OPTOUT_TOPIC_CHANGES": f"missing.{group_suffix}"}
    result = optout("block", ADDRESS, "--account", "acme", "--note", "x", env=env)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"topic missing.{group_suffix} does not exist" in lines[0]
    again = optout("block", ADDRESS, "--account", "acme", "--note", "x", env=env)
    assert f"topic missing.{group_suffix} does not exist" in again.stderr.decode()


@pytest.mark.broker("kafka", reason="Tansu has no transactions")
async def test_an_import_killed_half_way_leaves_nothing_and_running_it_again_completes(
    broker: str, topics: Topics, group_suffix: str, tmp_path: Path
) -> None:
    lines = 200_000
    path = tmp_path / "big.csv"
    path.write_text(
        "address,account\n" + "".join(f"+1555{i:07d},acme\n" for i in range(lines)), encoding="utf-8"
    )
    env = env_for(broker, topics, group_suffix)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "import",
        str(path),
        env=os.environ | env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Kill it as soon as its open transaction has written something (read_uncommitted sees it).
        await _first_uncommitted_record(broker, topics.changes, process)
    finally:
        if process.returncode is None:
            process.kill()
        _, err = await process.communicate()
    assert b"produced" not in err, "the import finished before it was killed: make the file larger"
    assert await read_topic(broker, topics.changes) == []  # read_committed: nothing of it

    again = optout("import", str(path), env=env)  # fences the dead run's transaction, aborts it
    assert again.returncode == 0, again.stderr
    records = await read_topic(broker, topics.changes)
    assert len(records) == lines
    assert len({orjson.loads(r.value)["event_id"] for r in records}) == lines


async def _first_uncommitted_record(broker: str, topic: str, process: asyncio.subprocess.Process) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker, auto_offset_reset="earliest", isolation_level="read_uncommitted"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while process.returncode is None:  # until the import's first record is readable
            if await consumer.getmany(timeout_ms=50, max_records=1):
                break
    finally:
        await consumer.stop()
