"""The operator commands as a user runs them: real processes, real broker and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from tests.integration.helpers import mo, produce, settings_for
from worker.errors import ConfigError
from worker.ops.httpserver import start_http
from worker.stream.classifier import run_classifier
from worker.stream.kafka import ensure_topics
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


def optout(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        input=stdin,
        env=os.environ | (env or {}),
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_classify_reads_stdin_and_writes_one_line_per_message() -> None:
    lines = mo("m1", "STOP") + b"\n" + b"garbage\n" + mo("m2", "see you later") + b"\n"
    result = optout("classify", stdin=lines)
    assert result.returncode == 0, result.stderr
    out = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("intent") for o in out] == ["opt_out", None, "none"]
    assert out[1]["error"]["code"] == "invalid_json"


async def test_topics_is_idempotent_and_creates_a_compacted_change_topic(
    broker: str, group_suffix: str
) -> None:
    env = {
        "OPTOUT_KAFKA_BOOTSTRAP": broker,
        "OPTOUT_TOPIC_INBOUND": f"in.{group_suffix}",
        "OPTOUT_TOPIC_CHANGES": f"changes.{group_suffix}",
        "OPTOUT_TOPIC_REPLIES": f"replies.{group_suffix}",
        "OPTOUT_TOPIC_DEAD_LETTER": f"dlq.{group_suffix}",
        "OPTOUT_TOPIC_REVIEW": f"review.{group_suffix}",
        "OPTOUT_TOPIC_WEBHOOK_DEAD_LETTER": f"webhooks.dlq.{group_suffix}",
        "OPTOUT_PARTITIONS": "3",
    }
    first = optout("topics", env=env)
    second = optout("topics", env=env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout.decode().count("created") == 6  # the webhook dead-letter topic too
    assert second.stdout.decode().count("exists") == 6
    assert f"changes.{group_suffix} (cleanup.policy=compact)" in second.stdout.decode()


async def test_topics_refuses_a_change_topic_that_is_not_compacted(broker: str, group_suffix: str) -> None:
    topics = Topics(
        f"in.{group_suffix}",
        f"changes.{group_suffix}",
        f"re.{group_suffix}",
        f"dl.{group_suffix}",
        f"rv.{group_suffix}",
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topics.changes, 1, 1, topic_configs={"cleanup.policy": "delete"})]
        )
    finally:
        await admin.close()
    with pytest.raises(ConfigError, match="must be compact"):
        await ensure_topics(settings_for(broker, topics, group_suffix))


def test_migrate_is_idempotent(database_url: str) -> None:
    result = optout("migrate", env={"OPTOUT_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "up to date"


def test_unreachable_database_is_one_line_exit_1(tmp_path: object) -> None:
    url = "postgresql://postgres@/postgres?host=/nonexistent-socket-dir"
    result = optout("check", "+15550000001", "--account", "acme", env={"OPTOUT_DATABASE_URL": url})
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unavailable" in lines[0]


async def test_metrics_count_what_the_classifier_did(broker: str, topics: Topics, group_suffix: str) -> None:
    await produce(
        broker,
        topics.inbound,
        [
            (None, mo("m1", "STOP"), 0),
            (None, mo("m2", "hello"), 1),
            (None, b"{", 2),
            (None, mo("m3", "help"), 3),
        ],
    )
    registry = CollectorRegistry()
    http = start_http(registry, "127.0.0.1", 0, lambda: (True, b'{"status":"ok"}'))
    try:
        await run_classifier(settings_for(broker, topics, group_suffix), burst=True, registry=registry)
        with urllib.request.urlopen(http.metrics_url, timeout=10) as response:
            text = response.read().decode()
        with urllib.request.urlopen(http.metrics_url.replace("/metrics", "/healthz"), timeout=10) as response:
            assert response.status == 200
    finally:
        http.stop()

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        found = registry.get_sample_value(name, labels or {})
        assert found is not None, name
        return found

    assert value("optout_records_consumed_total") == 4
    assert value("optout_records_classified_total", {"intent": "opt_out"}) == 1
    assert value("optout_records_classified_total", {"intent": "help"}) == 1
    assert value("optout_records_classified_total", {"intent": "none"}) == 1
    assert value("optout_records_dead_lettered_total", {"code": "invalid_json"}) == 1
    assert value("optout_changes_produced_total") == 1
    assert value("optout_replies_produced_total") == 2
    assert value("optout_batch_records_count") >= 1
    assert value("optout_batch_duration_seconds_count") >= 1
    assert value("optout_end_to_end_delay_seconds_count") >= 1
    assert value("optout_rebalances_total", {"event": "assigned"}) >= 1
    for partition in "0123":
        assert value("optout_consumer_lag_records", {"topic": topics.inbound, "partition": partition}) == 0
    assert "optout_records_consumed_total 4.0" in text
