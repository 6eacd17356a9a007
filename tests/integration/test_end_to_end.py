"""Input topic → classifier → compacted change topic → projector → Postgres, on real servers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    committed,
    connection,
    env_for,
    mo,
    produce,
    settings_for,
    spawn,
    wait_until,
)
from worker.store.postgres import Store
from worker.stream.classifier import run_classifier
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


async def _pipeline(broker: str, topics: Topics, suffix: str, database_url: str, **extra: str) -> None:
    settings = settings_for(broker, topics, suffix, **extra)
    await run_classifier(settings, burst=True)
    await run_projector(settings, database_url, burst=True)


async def _history_count(database_url: str) -> int:
    async with connection(database_url) as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM blocklist_history")
        return count


@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-arrives-first", "start-arrives-first"])
@pytest.mark.parametrize("stop_newer", [True, False], ids=["stop-newer", "start-newer"])
async def test_stop_and_start_on_different_partitions_in_either_order(
    broker: str, topics: Topics, group_suffix: str, database_url: str, stop_first: bool, stop_newer: bool
) -> None:
    address = "+15557770001"
    older, newer = "2026-11-24T12:00:00Z", "2026-11-24T12:00:05Z"
    stop = (None, mo("stop-1", "STOP", address, received_at=newer if stop_newer else older), 0)
    start = (None, mo("start-1", "START", address, received_at=older if stop_newer else newer), 3)
    await produce(broker, topics.inbound, [stop, start] if stop_first else [start, stop])
    await _pipeline(broker, topics, group_suffix, database_url)

    async with await Store.connect(database_url) as store:
        blocks = await store.check(address, "acme", sender="12345", channel="sms")
        history = await store.history(address)
    assert bool(blocks) is stop_newer
    assert [row["occurred_at"] for row in history] == sorted(row["occurred_at"] for row in history)
    assert {row["action"] for row in history} == {"block", "unblock"}


async def test_processing_twice_changes_nothing(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """Classifier output duplicated (crash before commit) and a projector replay: same rows."""
    await produce(
        broker,
        topics.inbound,
        [(None, mo(f"m{i}", "STOP" if i % 2 else "START", f"+1555300{i % 7:04d}"), i % 4) for i in range(30)],
    )
    await _pipeline(broker, topics, group_suffix, database_url)
    async with await Store.connect(database_url) as store:
        before = await store.history("+15553000001")
        state_before = [await store.blocks(f"+1555300{i:04d}") for i in range(7)]
    count_before = await _history_count(database_url)

    # Second classifier group: every change event again. Second projector group: everything replayed.
    await _pipeline(broker, topics, group_suffix + "-again", database_url)
    async with await Store.connect(database_url) as store:
        after = await store.history("+15553000001")
        state_after = [await store.blocks(f"+1555300{i:04d}") for i in range(7)]
    assert count_before > 0
    assert await _history_count(database_url) == count_before
    assert after == before
    assert state_after == state_before


async def test_kill_9_of_classifier_and_projector_loses_nothing(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    """kill -9 of each process mid-stream: every opt-out ends in Postgres, no history row twice."""
    env = env_for(broker, topics, group_suffix, database_url)
    addresses = [f"+1555400{i:04d}" for i in range(0, 8000, 10)]
    records = [
        (
            None,
            mo(f"m{i}", "STOP" if i % 10 == 0 else "running late, see you soon", f"+1555400{i:04d}"),
            i % 4,
        )
        for i in range(8000)
    ]
    await produce(broker, topics.inbound, records)

    async def classifier_committed() -> bool:
        offsets = await committed(broker, env["OPTOUT_GROUP_ID"], topics.inbound)
        return sum(o or 0 for o in offsets.values()) > 0

    async def projector_stored() -> bool:
        return await _history_count(database_url) > 0

    for command, progressed in (("classifier", classifier_committed), ("projector", projector_stored)):
        batch = "100" if command == "classifier" else "10"
        child = spawn(command, env | {"OPTOUT_BATCH_MAX_RECORDS": batch}, tmp_path / f"{command}.log")
        try:
            await wait_until(progressed, 60, f"the {command} to make progress", interval=0.05)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        if command == "classifier":
            await run_classifier(settings_for(broker, topics, group_suffix), burst=True)

    await run_projector(settings_for(broker, topics, group_suffix), database_url, burst=True)
    async with connection(database_url) as conn:
        rows = await conn.fetch("SELECT event_id, address FROM blocklist_history")
    async with await Store.connect(database_url) as store:
        blocked = [address for address in addresses if await store.check(address, "acme", channel="sms")]
    assert len(blocked) == len(addresses)
    assert len(rows) == len({row["event_id"] for row in rows}) == len(addresses)


RULES = {
    "version": 1,
    "rules": [{"name": "stop_promo", "intent": "opt_out", "keywords": ["STOP PROMO"], "level": "subaccount"}],
    "overrides": [
        {
            "account": "bank",
            "rules": [{"name": "stop_sender", "intent": "opt_out", "keywords": ["STOP"], "level": "sender"}],
        }
    ],
}


async def test_scopes_resolve(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    await produce(
        broker,
        topics.inbound,
        [
            (None, mo("a1", "STOP", "+15558880001"), 0),
            (None, mo("a2", "stop promo", "+15558880002", subaccount="s1"), 1),
            (None, mo("a3", "Stop!", "+15558880003", account="bank", sender="BANKCO"), 2),
            (None, mo("a4", "STOP ALL", "+15558880004"), 3),
            (None, mo("a5", "STOP", "+15558880005", account="bank", sender="BANKCO"), 0),
            (
                None,
                mo(
                    "a6",
                    "start",
                    "+15558880005",
                    account="bank",
                    sender="BANKCO",
                    received_at="2026-11-24T13:00:00Z",
                ),
                1,
            ),
        ],
    )
    await _pipeline(broker, topics, group_suffix, database_url, OPTOUT_RULES=str(rules))

    async with await Store.connect(database_url) as store:

        async def blocked(address: str, account: str = "acme", **target: Any) -> bool:
            return bool(await store.check(address, account, **target))

        # account level, on the channel it came in on
        assert await blocked("+15558880001", sender="99999", channel="sms")
        assert await blocked("+15558880001", subaccount_id="s9", sender="any", channel="sms")
        assert not await blocked("+15558880001", channel="whatsapp")
        assert not await blocked("+15558880001", "other-account", channel="sms")
        # subaccount level
        assert await blocked("+15558880002", subaccount_id="s1", channel="sms")
        assert not await blocked("+15558880002", subaccount_id="s2", channel="sms")
        assert not await blocked("+15558880002", channel="sms")
        # sender level (the bank's override)
        assert await blocked("+15558880003", "bank", sender="BANKCO", channel="sms")
        assert not await blocked("+15558880003", "bank", sender="OTHER", channel="sms")
        # STOP ALL covers every channel
        assert await blocked("+15558880004", channel="whatsapp")
        assert await blocked("+15558880004", channel="rcs")
        # START lifts the blocks that would stop the sender it was sent to
        assert not await blocked("+15558880005", "bank", sender="BANKCO", channel="sms")

    env = {"OPTOUT_DATABASE_URL": database_url}
    check = _optout(
        env, "check", "+15558880003", "--account", "bank", "--sender", "BANKCO", "--channel", "sms"
    )
    assert check["blocked"] is True
    assert check["blocks"][0]["level"] == "sender"
    assert check["blocks"][0]["keyword"] == "STOP"
    other = _optout(env, "check", "+15558880003", "--account", "bank", "--sender", "OTHER")
    assert other["blocked"] is False
    assert len(other["other_blocks"]) == 1

    history = subprocess.run(
        [sys.executable, "-m", "worker", "history", "+15558880005"],
        env=_env(env), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert rows[0]["action"] == "block"
    assert rows[0]["source_message_id"] == "a5"
    assert rows[0]["scope"] == {
        "level": "sender", "account_id": "bank", "subaccount_id": None, "sender": "BANKCO", "channel": "sms",
    }  # fmt: skip
    assert rows[0]["keyword"] == "STOP"
    assert (rows[0]["language"], rows[0]["match"]) == ("en", "exact")
    assert rows[0]["occurred_at"] == "2026-11-24T12:00:00.000000Z"
    assert {row["action"] for row in rows[1:]} == {"unblock"}
    assert all(row["source_message_id"] == "a6" for row in rows[1:])


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return os.environ | extra


def _optout(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
