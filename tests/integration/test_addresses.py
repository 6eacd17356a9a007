"""One subscriber, one identity (issue 10), on the real broker and Postgres: a STOPALL from
``whatsapp:+447700900123`` blocks ``+447700900123`` on SMS, and the national ``07700 900123`` of an
account whose default country is GB is the same block key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.integration.helpers import connection, mo, produce, read_topic, settings_for
from worker.store.postgres import Store
from worker.stream.classifier import run_classifier
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

SUBSCRIBER = "+447700900123"


async def _pipeline(broker: str, topics: Topics, suffix: str, database_url: str, rules: Path) -> None:
    settings = settings_for(broker, topics, suffix, OPTOUT_RULES=str(rules))
    await run_classifier(settings, burst=True)
    await run_projector(settings, database_url, burst=True)


async def test_a_stopall_on_whatsapp_blocks_sms_and_the_national_number_is_the_same_key(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"version": 1, "default_country": "GB"}), encoding="utf-8")
    await produce(
        broker,
        topics.inbound,
        [
            (None, mo("wa-1", "STOPALL", f"whatsapp:{SUBSCRIBER}", sender="whatsapp:+14155238886",
                      channel="whatsapp", received_at="2026-11-24T12:00:00Z"), 0),
            (None, mo("mail-1", "STOP", "jane@example.com", channel="email"), 1),
        ],
    )  # fmt: skip
    await _pipeline(broker, topics, group_suffix, database_url, rules)

    async with await Store.connect(database_url) as store:
        # A send service asks about the subscriber in E.164, on SMS: the all-channels block applies.
        assert await store.check(SUBSCRIBER, "acme", sender="12345", channel="sms")
        assert not await store.check("whatsapp:" + SUBSCRIBER, "acme", channel="sms")  # no such key
        assert await store.check("jane@example.com", "acme", channel="email")  # as written
    replies = [orjson.loads(r.value) for r in await read_topic(broker, topics.replies)]
    assert {(r["to"], r["from"], r["channel"]) for r in replies if r["in_reply_to"] == "wa-1"} == {
        (SUBSCRIBER, "+14155238886", "whatsapp")
    }

    # The operator's command takes any form of the address, with the rules file's country.
    env = os.environ | {"OPTOUT_DATABASE_URL": database_url, "OPTOUT_RULES": str(rules)}
    for written in (SUBSCRIBER, "07700 900123", f"whatsapp:{SUBSCRIBER}", "+44 7700 900123"):
        result = subprocess.run(
            [sys.executable, "-m", "worker", "check", written, "--account", "acme", "--channel", "sms"],
            env=env, capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        answer = orjson.loads(result.stdout)
        assert answer["address"] == SUBSCRIBER, written
        assert answer["blocked"] is True, written

    # The subscriber now texts START from a phone that writes the number nationally, on SMS: the
    # same key, so the all-channels block is lifted (a different key would leave it in place).
    await produce(
        broker,
        topics.inbound,
        [(None, mo("sms-1", "START", "07700 900123", received_at="2026-11-24T12:00:05Z"), 2)],
    )
    await _pipeline(broker, topics, group_suffix, database_url, rules)
    async with await Store.connect(database_url) as store:
        assert not await store.check(SUBSCRIBER, "acme", sender="12345", channel="sms")
        assert not await store.check(SUBSCRIBER, "acme", channel="whatsapp")
        history = await store.history(SUBSCRIBER)
    assert {("block", "*"), ("unblock", "*")} <= {(row["action"], row["channel"]) for row in history}
    async with connection(database_url) as conn:
        addresses = {r["address"] for r in await conn.fetch("SELECT address FROM blocklist_history")}
    assert addresses == {SUBSCRIBER, "jane@example.com"}
