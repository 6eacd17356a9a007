"""The classifier against the real broker: outputs, dead letters, commits, shutdown, outages."""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.integration.helpers import (
    committed,
    env_for,
    log_says,
    mo,
    produce,
    read_topic,
    settings_for,
    spawn,
    values,
    wait_until,
)
from worker.dev.stack import free_port, start_broker
from worker.events import schemas
from worker.stream.classifier import run_classifier
from worker.stream.kafka import ensure_topics
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

BAD_INPUTS: list[tuple[str, bytes | None]] = [
    ("empty_value", b""),
    ("invalid_utf8", b'{"message_id": "\xff\xfe"}'),
    ("invalid_json", b'{"message_id": "x",'),
    ("not_an_object", b"[1, 2, 3]"),
    ("missing_field", orjson.dumps({"message_id": "b1", "channel": "sms"})),
    ("invalid_field", mo("b2", "STOP").replace(b'"text":"STOP"', b'"text":42')),
    ("text_too_large", mo("b3", "é" * 40_000)),
    ("invalid_timestamp", mo("b4", "STOP", received_at="yesterday at noon")),
]


async def test_outputs_and_dead_letters(broker: str, topics: Topics, group_suffix: str) -> None:
    """Each kind of bad input is dead-lettered with its reason; the good records around it are not lost."""
    good = [
        mo("g1", "Stop.", "+15550000001"),
        mo("g2", "Don't stop!", "+15550000002"),
        mo("g3", "START", "+15550000003", subaccount="s1"),
        mo("g4", "help", "+15550000004"),
        mo("g5", "ＳＴＯＰ", "+15550000005", channel="whatsapp"),
    ]
    records = [(b"k", v, 0) for v in [good[0], *[raw for _, raw in BAD_INPUTS], *good[1:]]]
    await produce(broker, topics.inbound, records)

    stats = await run_classifier(settings_for(broker, topics, group_suffix), burst=True)
    assert stats.records == len(records)

    dead = values(await read_topic(broker, topics.dead_letter))
    assert sorted(d["error"]["code"] for d in dead) == sorted(code for code, _ in BAD_INPUTS)
    by_code = {d["error"]["code"]: d for d in dead}
    for code, raw in BAD_INPUTS:
        letter = by_code[code]
        assert letter["error"]["detail"], code
        assert letter["source"]["topic"] == topics.inbound
        assert letter["source"]["partition"] == 0
        assert base64.b64decode(letter["value_b64"] or "") == (raw or b"")
        schemas.validator(schemas.DEAD_LETTER).validate(letter)
    offsets = sorted(d["source"]["offset"] for d in dead)
    assert offsets == list(range(1, 1 + len(BAD_INPUTS)))

    changes = values(await read_topic(broker, topics.changes))
    for change in changes:
        schemas.validator(schemas.CHANGE).validate(change)
    blocks = {(c["address"], c["scope"]["channel"]) for c in changes if c["action"] == "block"}
    assert blocks == {("+15550000001", "sms"), ("+15550000005", "whatsapp")}
    unblocks = [c for c in changes if c["action"] == "unblock"]
    assert {c["address"] for c in unblocks} == {"+15550000003"}
    assert {c["scope"]["level"] for c in unblocks} == {"account", "subaccount", "sender"}

    replies = values(await read_topic(broker, topics.replies))
    for reply in replies:
        schemas.validator(schemas.REPLY).validate(reply)
    assert sorted((r["in_reply_to"], r["intent"]) for r in replies) == [
        ("g1", "opt_out"), ("g3", "opt_in"), ("g4", "help"), ("g5", "opt_out"),
    ]  # fmt: skip

    commits = await committed(broker, f"classifier-{group_suffix}", topics.inbound)
    assert commits[0] == len(records)


async def test_acked_offsets_are_committed_at_the_end_and_before_a_rebalance(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    """At-least-once commits at most every OPTOUT_COMMIT_INTERVAL_MS; here the interval is longer
    than the test, so every commit seen is one taken at a revocation or at the end. A second member
    joining must find the first member's offsets committed for the partitions it takes: it
    reprocesses nothing, and no change event is written twice."""
    await produce(
        broker, topics.inbound, [(None, mo(f"m{i}", "STOP", f"+1555200{i:04d}"), i % 4) for i in range(100)]
    )
    settings = settings_for(
        broker, topics, group_suffix, OPTOUT_DELIVERY="at-least-once", OPTOUT_COMMIT_INTERVAL_MS="600000"
    )  # exactly-once (the default on Apache Kafka) commits the offsets in each batch's transaction
    stop = asyncio.Event()
    first = asyncio.create_task(run_classifier(settings, stop=stop))

    async def all_changed() -> bool:
        return len(await read_topic(broker, topics.changes)) == 100

    await wait_until(all_changed, 60, "the first member to classify every record")
    assert sum(o or 0 for o in (await committed(broker, settings.group_id, topics.inbound)).values()) == 0
    second = await run_classifier(settings, burst=True)  # joins, takes partitions, drains, leaves
    stop.set()
    stats = await first
    assert second.records == 0, "the second member reprocessed offsets the first had not committed"
    assert stats.records == 100
    assert len(await read_topic(broker, topics.changes)) == 100
    offsets = await committed(broker, settings.group_id, topics.inbound)
    assert sum(o or 0 for o in offsets.values()) == 100


async def test_reprocessing_yields_identical_ids(broker: str, topics: Topics, group_suffix: str) -> None:
    """A batch processed twice (a crash before the commit) produces the same event ids."""
    await produce(
        broker, topics.inbound, [(None, mo(f"m{i}", "STOP", f"+1555100{i:04d}"), i % 4) for i in range(40)]
    )
    await run_classifier(settings_for(broker, topics, group_suffix), burst=True)
    first = values(await read_topic(broker, topics.changes))
    # A second group re-reads everything: exactly what a crash before the commit does.
    await run_classifier(settings_for(broker, topics, group_suffix + "-again"), burst=True)
    both = values(await read_topic(broker, topics.changes))
    assert len(first) == 40
    assert len(both) == 80
    assert {c["event_id"] for c in both} == {c["event_id"] for c in first}


async def test_sigterm_finishes_batch_commits_and_exits_zero(
    broker: str, topics: Topics, group_suffix: str, tmp_path: Path
) -> None:
    env = env_for(broker, topics, group_suffix)
    log = tmp_path / "classifier.log"
    child = spawn("classifier", env, log)
    try:
        await produce(broker, topics.inbound, [(None, mo(f"m{i}", "hi there"), i % 4) for i in range(200)])

        async def all_committed() -> bool:
            offsets = await committed(broker, env["OPTOUT_GROUP_ID"], topics.inbound)
            return sum(o or 0 for o in offsets.values()) == 200

        await wait_until(all_committed, 60, "the classifier to commit 200 records")
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0, log.read_text()
    finally:
        if child.poll() is None:
            child.kill()
    text = log.read_text()
    assert "classifier stopped after 200 records" in text
    assert "Traceback" not in text


async def test_kill_9_mid_stream_loses_no_opt_out(
    broker: str, topics: Topics, group_suffix: str, tmp_path: Path
) -> None:
    """kill -9 of the classifier mid-stream: after a restart every opt-out is on the change topic."""
    env = env_for(broker, topics, group_suffix) | {"OPTOUT_BATCH_MAX_RECORDS": "200"}
    stops = 300
    records = []
    for i in range(6000):
        text = "STOP" if i % 20 == 0 else "see you at the game tonight"
        records.append((None, mo(f"m{i}", text, f"+1555200{i:04d}"), i % 4))
    assert sum(1 for _, v, _ in records if b'"STOP"' in (v or b"")) == stops
    log = tmp_path / "classifier.log"
    child = spawn("classifier", env, log)
    try:
        await produce(broker, topics.inbound, records)

        async def some_progress() -> bool:
            offsets = await committed(broker, env["OPTOUT_GROUP_ID"], topics.inbound)
            return sum(o or 0 for o in offsets.values()) > 0

        await wait_until(some_progress, 60, "a first commit")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    await run_classifier(settings_for(broker, topics, group_suffix), burst=True)
    changes = values(await read_topic(broker, topics.changes))
    assert {c["address"] for c in changes} == {f"+1555200{i:04d}" for i in range(0, 6000, 20)}
    assert len({c["event_id"] for c in changes}) == stops


async def test_waits_out_an_unreachable_broker(tmp_path: Path, group_suffix: str) -> None:
    """Broker down at start: one clear log line, retries with backoff, then works once it is up."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topics = Topics(
        f"in.{group_suffix}",
        f"ch.{group_suffix}",
        f"re.{group_suffix}",
        f"dl.{group_suffix}",
        f"rv.{group_suffix}",
    )
    env = env_for(bootstrap, topics, group_suffix)
    log = tmp_path / "classifier.log"
    child = spawn("classifier", env, log)
    broker = None
    try:
        # The broker starts only once the classifier has found it missing: on a slow machine a
        # fixed 3 s sleep ended before the classifier had imported, and it never saw the outage.
        await wait_until(lambda: log_says(log, "Kafka unavailable"), 60, "the classifier to find no broker")
        assert child.poll() is None, log.read_text()
        broker = start_broker(port)
        await ensure_topics(settings_for(bootstrap, topics, group_suffix))
        await produce(bootstrap, topics.inbound, [(None, mo("m1", "STOP"), 0)])

        async def changed() -> bool:
            return bool(await read_topic(bootstrap, topics.changes, idle_ms=300))

        await wait_until(changed, 90, "the classifier to process after the broker came up")
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
        if broker is not None:
            broker.stop()
    text = log.read_text()
    assert text.count("unavailable") == 1, text
    assert "available again" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--kafka-bootstrap", "not a host", "OPTOUT_KAFKA_BOOTSTRAP"),
        ("--metrics-port", "99999", "OPTOUT_METRICS_PORT"),
        ("--topic-inbound", "bad topic!", "OPTOUT_TOPIC_INBOUND"),
        ("--rules", "/nonexistent/rules.json", "OPTOUT_RULES"),
    ],
)
def test_wrong_settings_fail_with_one_line(flag: str, value: str, expected: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [*_optout(), "classifier", flag, value], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_rules_file_fails_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"version": 1, "rules": [{"name": "x", "intent": "opt_out"}]}')
    result = subprocess.run(
        [*_optout(), "classifier", "--rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "keywords" in result.stderr


def _optout() -> list[str]:
    return [sys.executable, "-m", "worker"]


async def test_raw_records_are_the_records_a_consumer_reads(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    """On the real broker, the classifier's consumers take the record batches' own records
    (worker.stream.records): the same offsets, keys, values and timestamps as ConsumerRecords, and
    not ConsumerRecords (were aiokafka's fetcher to change, the raw path would go silently)."""
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from worker.stream.kafka import make_consumer

    sent = [(f"k{i}".encode(), f"v{i}".encode(), i % 2) for i in range(300)]
    await produce(broker, topics.inbound, sent)
    settings = settings_for(broker, topics, group_suffix)

    async def read(raw: bool) -> tuple[dict[int, list[tuple[int, bytes, bytes, int]]], set[str]]:
        consumer = make_consumer(settings, None, raw_records=raw, max_poll_records=70)
        await consumer.start()
        try:
            partitions = [TopicPartition(topics.inbound, p) for p in (0, 1)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            got: dict[int, list[tuple[int, bytes, bytes, int]]] = {0: [], 1: []}
            kinds: set[str] = set()
            while sum(map(len, got.values())) < len(sent):
                for tp, records in (await consumer.getmany(timeout_ms=2000)).items():
                    got[tp.partition] += [(r.offset, r.key, r.value, r.timestamp) for r in records]
                    kinds |= {type(r).__name__ for r in records}
            return got, kinds
        finally:
            await consumer.stop()

    raw, raw_kinds = await read(True)
    usual, usual_kinds = await read(False)
    assert raw == usual
    assert [key for _, key, _, _ in raw[1]] == [f"k{i}".encode() for i in range(1, 300, 2)]
    assert usual_kinds == {ConsumerRecord.__name__}
    assert raw_kinds
    assert ConsumerRecord.__name__ not in raw_kinds
