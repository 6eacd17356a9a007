"""Delivery and security on the real Apache Kafka broker (issue 9): exactly-once classification
through kill -9 and a rebalance, the idempotent producer, SASL_SSL with SCRAM-SHA-512 and mTLS.

The broker is this module's session fixture (:mod:`tests.integration.kafka_fixtures`); without
Java the module is skipped with one reason.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from tests.integration.helpers import REPO, connection, env_for, log_says, mo, produce, spawn, wait_until
from tests.integration.kafka_fixtures import (
    PASSWORD,
    USER,
    committed_total,
    create_topics,
    duplicates,
    no_open_transactions,
    read_all,
    run_apache_kafka,
)
from worker.classify.rulesfile import load_rules
from worker.config import Settings
from worker.dev.kafka_broker import KafkaBroker
from worker.stream.batch import BatchOutput, classify_records
from worker.stream.classifier import delivery_mode, run_classifier
from worker.stream.delivery import transaction_layout
from worker.stream.kafka import probe_features
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka(broker_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's Apache Kafka broker (PLAINTEXT, SASL_SSL/SCRAM-SHA-512 and mTLS listeners).

    Only in the Kafka session (OPTOUT_TEST_BROKER=kafka, make test's second half): they ran in both
    halves before, the same tests twice on the same broker, minutes of CI for nothing."""
    if broker_kind != "kafka":
        pytest.skip("Apache Kafka's own tests run with OPTOUT_TEST_BROKER=kafka (make test's Kafka half)")
    yield from run_apache_kafka(tmp_path_factory)


# -- inputs and what they must produce -------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Enough of a consumed record for :func:`classify_records` (ids do not depend on offsets)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def inbound(count: int, prefix: str) -> list[bytes]:
    """STOPs, STARTs, HELPs, chatter and a few malformed records, one subscriber each."""
    words = ["STOP", "hello there", "HELP", "see you", "START", "unsubscribe", "ok", "STOP ALL"]
    out = []
    for i in range(count):
        if i % 41 == 7:
            out.append(f'{{"message_id": "broken-{i}",'.encode())
        else:
            out.append(mo(f"{prefix}-{i}", words[i % len(words)], f"+1555{i:07d}"))
    return out


@dataclass(frozen=True)
class Expected:
    changes: set[str]
    replies: set[str]
    dead_letters: int


def expected(values: list[bytes]) -> Expected:
    out = BatchOutput(emitted_at="2026-12-01T00:00:00.000000Z", worker_version="test")
    records = [Record("in", 0, i, 0, b"k", value) for i, value in enumerate(values)]
    classify_records(TopicPartition("in", 0), records, load_rules(None), out)
    return Expected(
        {orjson.loads(v)["event_id"] for _, v in out.changes},
        {orjson.loads(v)["reply_id"] for _, v in out.replies},
        len(out.dead_letters),
    )


async def produce_inbound(bootstrap: str, topic: str, values: list[bytes]) -> None:
    await produce(
        bootstrap,
        topic,
        [(orjson.loads(v)["from"].encode() if b"from" in v else None, v, None) for v in values],
    )


async def assert_exactly_once(bootstrap: str, topics: Topics, want: Expected) -> dict[str, float]:
    """read_committed: every expected change and reply once, nothing else; returns what a
    read_uncommitted reader saw in addition (aborted output of killed transactions), and how long
    the transactions a kill left open took to be aborted (read_committed readers see nothing
    after their first record until then: at once with a producer per partition, the next owner's
    InitProducerId; within the coordinator's timeout with one per process)."""
    waited = await no_open_transactions(bootstrap, [topics.changes, topics.replies, topics.dead_letter])
    changes = [orjson.loads(r.value)["event_id"] for r in await read_all(bootstrap, topics.changes)]
    replies = [orjson.loads(r.value)["reply_id"] for r in await read_all(bootstrap, topics.replies)]
    letters = await read_all(bootstrap, topics.dead_letter)
    assert duplicates(changes) == {}, "a change event appears twice"
    assert duplicates(replies) == {}, "a reply request appears twice"
    assert set(changes) == want.changes
    assert set(replies) == want.replies
    assert len(letters) == want.dead_letters
    raw = await read_all(bootstrap, topics.changes, isolation_level="read_uncommitted")
    return {
        "changes_committed": len(changes),
        "changes_uncommitted_reader": len(raw),
        "open_transactions_waited_s": round(waited, 1),
    }


def kafka_env(broker: KafkaBroker, topics: Topics, suffix: str, **extra: str) -> dict[str, str]:
    return env_for(broker.bootstrap, topics, suffix) | extra


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.from_mapping(env)


def optout(*args: str, env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=os.environ | env,
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )


async def wait_exit(process: subprocess.Popen[bytes], seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"process {process.pid} did not exit within {seconds}s")
        await asyncio.sleep(0.1)
    return process.returncode


# -- delivery ------------------------------------------------------------------------------------------


async def test_features_and_mode_on_kafka(kafka: KafkaBroker) -> None:
    topics = await create_topics(kafka.bootstrap)
    settings = settings_of(kafka_env(kafka, topics, "features"))
    features = await probe_features(settings)
    assert (features.idempotence, features.transactions) == (True, True)
    assert delivery_mode(settings, features) == "exactly-once"
    assert delivery_mode(settings.replace(delivery="at-least-once"), features) == "at-least-once"
    assert features.group_fencing  # TxnOffsetCommit v3 and OffsetFetch v7: KIP-447
    assert transaction_layout(settings, features) == "per-process"
    assert transaction_layout(settings.replace(transactions="per-partition"), features) == "per-partition"


async def test_classifier_logs_its_mode_on_tansu_and_kafka(
    broker: str, kafka: KafkaBroker, tmp_path: Path
) -> None:
    """One line says which mode it runs in: at-least-once on Tansu (no transactions), exactly-once on
    Kafka; both produce the same outputs."""
    values = inbound(50, "mode")
    want = expected(values)
    for name, bootstrap in (("tansu", broker), ("kafka", kafka.bootstrap)):
        topics = await create_topics(bootstrap)
        await produce_inbound(bootstrap, topics.inbound, values)
        env = env_for(bootstrap, topics, f"mode-{name}")
        features = await probe_features(settings_of(env))
        log = tmp_path / f"{name}.log"
        code = await wait_exit(spawn("classifier", env, log, "--burst"), 120)
        text = log.read_text()
        assert code == 0, text
        lines = [line for line in text.splitlines() if "delivery:" in line]
        assert len(lines) == 1, text
        mode = "exactly-once" if features.transactions else "at-least-once"
        assert f"delivery: {mode}" in lines[0]
        if name == "kafka":
            assert mode == "exactly-once"
        changes = {orjson.loads(r.value)["event_id"] for r in await read_all(bootstrap, topics.changes)}
        assert changes == want.changes


@pytest.mark.parametrize("layout", ["per-process", "per-partition"])
async def test_exactly_once_through_kill_9(kafka: KafkaBroker, tmp_path: Path, layout: str) -> None:
    """SIGKILL the classifier three times while it is producing, restart it each time: a
    read_committed reader sees every change event and reply request exactly once, none missing;
    with either producer layout (per process, a killed classifier's open transaction is aborted by
    the coordinator's timeout, 10 s, which the restarted one waits out)."""
    await _kill_9_run(kafka, tmp_path, "exactly-once", OPTOUT_TRANSACTIONS=layout)
    log = (tmp_path / "classifier.log").read_text()
    producers = (
        "one transactional producer for the process" if layout == "per-process" else "per input partition"
    )
    assert log.count(producers) == 4


async def _kill_9_run(kafka: KafkaBroker, tmp_path: Path, delivery: str, **extra: str) -> dict[str, float]:
    bootstrap = kafka.bootstrap
    topics = await create_topics(bootstrap)
    values = inbound(30_000, "k9")
    want = expected(values)
    await produce_inbound(bootstrap, topics.inbound, values)
    env = kafka_env(kafka, topics, "kill9", OPTOUT_DELIVERY=delivery, OPTOUT_BATCH_MAX_RECORDS="300", **extra)
    group = env["OPTOUT_GROUP_ID"]
    log = tmp_path / "classifier.log"
    kills = []
    rng = random.Random(9)
    for fraction in (0.15, 0.4, 0.65):
        child = spawn("classifier", env, log)
        try:
            await wait_until(
                lambda f=fraction: _past(bootstrap, group, topics.inbound, len(values) * f),
                120,
                f"{fraction:.0%} of the input committed",
                interval=0.05,
            )
            await asyncio.sleep(rng.uniform(0.0, 0.3))  # not right after a commit: mid-transaction
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        kills.append(await committed_total(bootstrap, group, topics.inbound, 4))
    assert kills[-1] < len(values), "the classifier finished before the last kill"
    code = await wait_exit(spawn("classifier", env, log, "--burst"), 300)
    assert code == 0, log.read_text()[-3000:]
    assert await committed_total(bootstrap, group, topics.inbound, 4) == len(values)
    seen = await assert_exactly_once(bootstrap, topics, want)
    assert log.read_text().count(f"delivery: {delivery}") == 4
    print(f"killed at {kills} of {len(values)} committed; {seen}")
    return seen


async def test_exactly_once_with_a_transaction_interval(kafka: KafkaBroker) -> None:
    """OPTOUT_TRANSACTION_INTERVAL_MS: input arriving in small bursts while the classifier runs goes
    out exactly once and committed, each partition's transactions at least the interval apart (so
    no more of them than the run's span allows)."""
    interval = 0.2
    topics = await create_topics(kafka.bootstrap)
    env = kafka_env(kafka, topics, "interval", OPTOUT_TRANSACTION_INTERVAL_MS=str(int(interval * 1000)))
    settings = settings_of(env)
    values = inbound(400, "iv")
    group = env["OPTOUT_GROUP_ID"]
    running = asyncio.create_task(run_classifier(settings, burst=True))
    await produce_inbound(kafka.bootstrap, topics.inbound, values[:40])
    await wait_until(lambda: _past(kafka.bootstrap, group, topics.inbound, 1), 60, "a first commit")
    for start in range(40, len(values), 40):  # then a burst every 50 ms, each on every partition
        await produce_inbound(kafka.bootstrap, topics.inbound, values[start : start + 40])
        await asyncio.sleep(0.05)
    stats = await running
    assert stats.records == len(values)
    await assert_exactly_once(kafka.bootstrap, topics, expected(values))
    assert await committed_total(kafka.bootstrap, group, topics.inbound, 4) == len(values)
    assert stats.first_record_at is not None
    assert stats.last_batch_done_at is not None
    span = stats.last_batch_done_at - stats.first_record_at
    # A transaction each (without the interval: one per burst and partition, 40 in 1.0 s).
    assert stats.batches <= 4 * (span / interval + 1), (stats.batches, span)


async def _past(bootstrap: str, group: str, topic: str, threshold: float) -> bool:
    return await committed_total(bootstrap, group, topic, 4) >= threshold


async def test_two_classifiers_rebalance_then_projector(
    kafka: KafkaBroker, database_url: str, tmp_path: Path
) -> None:
    """Two classifiers share 8 partitions; one is killed mid-stream and the other takes its partitions
    over; then the projector: every change lands in Postgres once, none is missing."""
    bootstrap = kafka.bootstrap
    topics = await create_topics(bootstrap, partitions=8)
    values = inbound(24_000, "rb")
    want = expected(values)
    env = kafka_env(kafka, topics, "rebalance", OPTOUT_BATCH_MAX_RECORDS="300")
    env["OPTOUT_DATABASE_URL"] = database_url
    group = env["OPTOUT_GROUP_ID"]
    first = spawn("classifier", env, tmp_path / "first.log")
    second = spawn("classifier", env, tmp_path / "second.log")
    try:
        await wait_until(lambda: _assigned_both(tmp_path), 60, "both classifiers assigned partitions")
        await produce_inbound(bootstrap, topics.inbound, values)
        await wait_until(
            lambda: _partitions_past(bootstrap, group, topics.inbound, len(values) * 0.25),
            120,
            "a quarter of the input committed",
            interval=0.05,
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = await committed_total(bootstrap, group, topics.inbound, 8)
        await wait_until(
            lambda: _partitions_past(bootstrap, group, topics.inbound, len(values)),
            180,
            "all input committed",
        )
    finally:
        for child in (first, second):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (first, second):
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
    second_log = (tmp_path / "second.log").read_text()
    assert at_kill < len(values), "the input was done before the kill"
    assigned = [line for line in second_log.splitlines() if "partitions assigned" in line]
    assert assigned[-1].count(f"{topics.inbound}[") == 8, second_log  # took the killed one's over
    await assert_exactly_once(bootstrap, topics, want)
    stats = await run_projector(settings_of(env), database_url, burst=True)
    assert stats.records == len(want.changes)
    async with connection(database_url) as conn:
        rows = await conn.fetchval("SELECT count(*) FROM blocklist_history")
        distinct = await conn.fetchval("SELECT count(DISTINCT event_id) FROM blocklist_history")
        ids = {row["event_id"] for row in await conn.fetch("SELECT event_id FROM blocklist_history")}
    assert rows == distinct == len(want.changes)
    assert ids == want.changes


async def _assigned_both(directory: Path) -> bool:
    return all(
        [
            await log_says(directory / log, "partitions assigned: mo.inbound")
            for log in ("first.log", "second.log")
        ]
    )


async def _partitions_past(bootstrap: str, group: str, topic: str, threshold: float) -> bool:
    return await committed_total(bootstrap, group, topic, 8) >= threshold


# -- security --------------------------------------------------------------------------------------


def sasl_env(broker: KafkaBroker, topics: Topics, suffix: str, password: str = PASSWORD) -> dict[str, str]:
    assert broker.sasl_ssl_bootstrap is not None
    assert broker.tls is not None
    return env_for(broker.sasl_ssl_bootstrap, topics, suffix) | {
        "OPTOUT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "OPTOUT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "OPTOUT_KAFKA_SASL_USERNAME": USER,
        "OPTOUT_KAFKA_SASL_PASSWORD": password,
        "OPTOUT_KAFKA_SSL_CAFILE": str(broker.tls.ca_cert),
    }


def mtls_env(broker: KafkaBroker, topics: Topics, suffix: str, **files: str) -> dict[str, str]:
    assert broker.ssl_bootstrap is not None
    assert broker.tls is not None
    return (
        env_for(broker.ssl_bootstrap, topics, suffix)
        | {
            "OPTOUT_KAFKA_SECURITY_PROTOCOL": "SSL",
            "OPTOUT_KAFKA_SSL_CAFILE": str(broker.tls.ca_cert),
            "OPTOUT_KAFKA_SSL_CERTFILE": str(broker.tls.client_cert),
            "OPTOUT_KAFKA_SSL_KEYFILE": str(broker.tls.client_key),
        }
        | files
    )


def _topics_only(suffix: str) -> Topics:
    return Topics(
        f"mo.inbound.{suffix}", f"blocklist.changes.{suffix}", f"optout.replies.{suffix}", f"dlq.{suffix}"
    )


async def _round_trip(env: dict[str, str], topics: Topics) -> None:
    """topics (verified), produce, classifier (exactly-once), then read its output back, all over
    the secured listener. The topics were created beforehand over PLAINTEXT and waited for, so that
    `optout topics` checks them rather than racing their creation (ensure_topics' business)."""
    made = optout("topics", env=env)
    assert made.returncode == 0, made.stderr.decode()
    values = inbound(20, "sec")
    fed = optout("produce", env=env, stdin=b"\n".join(values) + b"\n")
    assert fed.returncode == 0, fed.stderr.decode()
    settings = settings_of(env)
    stats = await run_classifier(settings, burst=True)
    assert stats.records == len(values)
    from worker.stream.kafka import client_kwargs

    client = {k: v for k, v in client_kwargs(settings).items() if k != "bootstrap_servers"}
    changes = await read_all(settings.kafka_bootstrap, topics.changes, **client)
    assert {orjson.loads(r.value)["event_id"] for r in changes} == expected(values).changes


async def test_sasl_ssl_scram_sha_512(kafka: KafkaBroker) -> None:
    topics = await create_topics(kafka.bootstrap)
    await _round_trip(sasl_env(kafka, topics, "sasl"), topics)


async def test_mtls_client_certificate(kafka: KafkaBroker) -> None:
    topics = await create_topics(kafka.bootstrap)
    await _round_trip(mtls_env(kafka, topics, "mtls"), topics)


async def test_encrypted_client_key_needs_its_password(kafka: KafkaBroker, tmp_path: Path) -> None:
    assert kafka.tls is not None
    encrypted = tmp_path / "client.enc.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(kafka.tls.client_key), "-aes256", "-passout", "pass:s3cret",
         "-out", str(encrypted)],
        check=True,
    )  # fmt: skip
    topics = await create_topics(kafka.bootstrap)
    env = mtls_env(kafka, topics, "mtlsenc", OPTOUT_KAFKA_SSL_KEYFILE=str(encrypted))
    right = optout("topics", env=env | {"OPTOUT_KAFKA_SSL_KEY_PASSWORD": "s3cret"})
    assert right.returncode == 0, right.stderr.decode()
    wrong = optout("topics", env=env | {"OPTOUT_KAFKA_SSL_KEY_PASSWORD": "nope"})
    lines = wrong.stderr.decode().strip().splitlines()
    assert wrong.returncode == 2
    assert len(lines) == 1, lines
    assert "OPTOUT_KAFKA_SSL_CERTFILE" in lines[0]
    assert "nope" not in lines[0]


@pytest.mark.parametrize("command", ["topics", "produce"])
def test_wrong_password_is_one_line_exit_1(kafka: KafkaBroker, command: str) -> None:
    env = sasl_env(kafka, _topics_only("wrongpw"), "wrongpw", password="wrong-password")
    result = optout(command, env=env, stdin=mo("w1", "STOP") + b"\n")
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1, result.stderr.decode()
    assert lines == [
        f"optout: error: Kafka at {kafka.sasl_ssl_bootstrap} is unavailable: "
        "authentication failed (SCRAM-SHA-512): invalid credentials"
    ]


def test_client_without_certificate_is_one_line_exit_1(kafka: KafkaBroker) -> None:
    env = mtls_env(kafka, _topics_only("nocert"), "nocert")
    for name in ("OPTOUT_KAFKA_SSL_CERTFILE", "OPTOUT_KAFKA_SSL_KEYFILE"):
        env.pop(name)
    result = optout("topics", env=env)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1, result.stderr.decode()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"optout: error: Kafka at {kafka.ssl_bootstrap} is unavailable: "
        "TLS handshake failed: the broker refused the client certificate"
    )


async def test_retrying_worker_says_why(kafka: KafkaBroker, tmp_path: Path) -> None:
    env = sasl_env(kafka, _topics_only("wrongworker"), "wrongworker", password="wrong-password")
    log = tmp_path / "classifier.log"
    child = spawn("classifier", env, log)
    try:
        await wait_until(
            lambda: log_says(
                log, "Kafka unavailable (authentication failed (SCRAM-SHA-512): invalid credentials)"
            ),
            60,
            "the outage line with its reason",
        )
        await asyncio.sleep(3)  # a few retries: still one line, no tracebacks
    finally:
        child.send_signal(signal.SIGTERM)
        code = await wait_exit(child, 60)
    text = log.read_text()
    assert code == 0, text
    assert text.count("Kafka unavailable") == 1, text
    assert "Traceback" not in text
    assert "wrong-password" not in text


@pytest.mark.parametrize(
    ("setting", "content"),
    [("OPTOUT_KAFKA_SSL_CAFILE", None), ("OPTOUT_KAFKA_SSL_CAFILE", b"not a pem"),
     ("OPTOUT_KAFKA_SSL_CERTFILE", None), ("OPTOUT_KAFKA_SSL_CERTFILE", b"not a pem")],
)  # fmt: skip
def test_unusable_tls_file_is_one_line_naming_setting_and_path(
    kafka: KafkaBroker, tmp_path: Path, setting: str, content: bytes | None
) -> None:
    path = tmp_path / "file.pem"
    if content is not None:
        path.write_bytes(content)
    env = mtls_env(kafka, _topics_only("badfile"), "badfile") | {setting: str(path)}
    for command in ("topics", "classifier"):
        result = optout(command, env=env)
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 2, result.stderr.decode()
        assert len(lines) == 1, lines
        assert setting in lines[0]
        assert str(path) in lines[0]


async def test_new_owner_fences_the_old_and_reads_the_final_offset(kafka: KafkaBroker) -> None:
    """The two aiokafka gaps the per-partition design closes, head on: an owner that is still
    running after its partition was taken over (a zombie) cannot commit (fenced, its batch
    dropped), and a take-over right after the previous owner's commit reads the new offset, never
    the stale one (20 hand-overs, back to back, inside the 20-45 ms window in which a plain
    OffsetFetch still answers the old offset)."""
    import logging

    from worker.backoff import Backoff
    from worker.logs import KAFKA
    from worker.stream.delivery import PartitionProducers

    topics, tp, owners = await _two_assigned_owners(kafka, PartitionProducers, "fence")
    log = logging.getLogger("test.fence")
    stop = asyncio.Event()
    (_, old), (_, new) = owners
    backoff = Backoff(KAFKA, log)
    try:
        assert await old.take_over({tp}, backoff, stop)
        assert await new.take_over({tp}, backoff, stop)  # fences the old owner's producer
        zombie = await old.deliver({tp: (0, 5)}, [(topics.changes, b"z", b"zombie")], backoff, stop)
        assert (zombie.committed, zombie.fenced) == (False, True)
        assert tp not in old.producers
        await _hand_over_twenty(kafka, topics, tp, [owners[1], owners[0]], backoff, stop)
    finally:
        for consumer, producers in owners:
            await producers.close()
            await consumer.stop()


async def _two_assigned_owners(
    kafka: KafkaBroker, layout: Any, suffix: str
) -> tuple[Topics, TopicPartition, list[Any]]:
    """A one-partition topic and two would-be owners of it in one group, each a consumer assigned
    the partition by hand and its ``layout`` of transactional producers (not yet taken over)."""
    import logging

    from worker.stream.kafka import make_consumer

    topics = await create_topics(kafka.bootstrap, partitions=1)
    settings = settings_of(kafka_env(kafka, topics, suffix))
    tp = TopicPartition(topics.inbound, 0)
    owners = []
    for _ in range(2):
        consumer = make_consumer(settings, settings.group_id)
        await consumer.start()
        consumer.assign([tp])
        owners.append((consumer, layout(settings, consumer, logging.getLogger(f"test.{suffix}"))))
    return topics, tp, owners


async def _hand_over_twenty(
    kafka: KafkaBroker,
    topics: Topics,
    tp: TopicPartition,
    owners: list[Any],
    backoff: Any,
    stop: asyncio.Event,
) -> None:
    """``owners`` ((consumer, producers) pairs, the first owning ``tp``) take turns: each commits one
    record's batch, and at once the other takes the partition over and must start after it."""
    for offset in range(20):
        (_, owner), (other_consumer, other) = owners[offset % 2], owners[1 - offset % 2]
        done = await owner.deliver(
            {tp: (offset, offset + 1)}, [(topics.changes, b"k", b"v%d" % offset)], backoff, stop
        )
        assert done.committed
        assert await other.take_over({tp}, backoff, stop)  # at once: inside the stale window
        assert await other_consumer.position(tp) == offset + 1, f"stale offset on take-over {offset}"
    values = [r.value for r in await read_all(kafka.bootstrap, topics.changes)]
    assert values == [b"v%d" % i for i in range(20)]


# -- one transactional producer per process (KIP-447) --------------------------------------------


async def _owner_in_group(settings: Settings, tp: TopicPartition, seconds: float = 30) -> Any:
    """A consumer of ``settings.group_id``, subscribed, once the group has given it ``tp``."""
    from worker.stream.kafka import make_consumer

    consumer = make_consumer(settings, settings.group_id)
    consumer.subscribe([tp.topic])
    await consumer.start()
    deadline = time.monotonic() + seconds
    while tp not in consumer.assignment():
        assert time.monotonic() < deadline, "the group never assigned the partition"
        await consumer.getmany(timeout_ms=100)
    return consumer


async def test_per_process_a_zombie_cannot_commit(kafka: KafkaBroker) -> None:
    """A classifier that the group dropped while it was stalled (no heartbeat for a session) and
    that then commits a batch: TxnOffsetCommit v3 carries its old generation, the coordinator
    refuses it, the transaction aborts, and read_committed readers see only the new owner's
    output. With aiokafka's TxnOffsetCommit v0 (no generation) the zombie's batch would commit."""
    import contextlib
    import logging

    from worker.backoff import Backoff
    from worker.logs import KAFKA
    from worker.stream.process_delivery import ProcessProducer

    topics = await create_topics(kafka.bootstrap, partitions=1)
    settings = settings_of(kafka_env(kafka, topics, "zombie"))
    tp = TopicPartition(topics.inbound, 0)
    log = logging.getLogger("test.zombie")
    stop = asyncio.Event()
    backoff = Backoff(KAFKA, log)
    old_consumer = await _owner_in_group(settings, tp)
    old = ProcessProducer(settings, old_consumer, log)
    new_consumer, new = None, None
    try:
        assert await old.take_over({tp}, backoff, stop)
        stale = (old_consumer._coordinator.generation, old_consumer._coordinator.member_id)
        # Stalled: its group tasks stop without leaving the group, as in a long pause.
        coordinator = old_consumer._coordinator
        for task in (coordinator._heartbeat_task, coordinator._coordination_task):
            if task is not None:
                task.cancel()
        new_consumer = await _owner_in_group(settings, tp)
        new = ProcessProducer(settings, new_consumer, log)
        assert await new.take_over({tp}, backoff, stop)
        assert (coordinator.generation, coordinator.member_id) == stale  # it does not know
        zombie = await old.deliver({tp: (0, 5)}, [(topics.changes, b"z", b"zombie")], backoff, stop)
        assert (zombie.committed, zombie.fenced) == (False, True)
        done = await new.deliver({tp: (0, 5)}, [(topics.changes, b"k", b"owner")], backoff, stop)
        assert done.committed
        assert [r.value for r in await read_all(kafka.bootstrap, topics.changes)] == [b"owner"]
        raw = await read_all(kafka.bootstrap, topics.changes, isolation_level="read_uncommitted")
        assert sorted(r.value for r in raw) == [b"owner", b"zombie"]  # it was written, then aborted
    finally:
        for producers in (old, new):
            if producers is not None:
                await producers.close()
        for consumer in (old_consumer, new_consumer):
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await consumer.stop()


async def test_per_process_a_new_owner_reads_the_final_offset(kafka: KafkaBroker) -> None:
    """Take-overs right after the other owner's commit, back to back 20 times: each new owner starts
    at the offset after the other's last commit, and each change event is there once. (On Kafka
    4.4 this hand-over did not catch a commit's markers still being written in 20 tries, so the
    stable fetch itself is tested head on below, against an open transaction.)"""
    import logging

    from worker.backoff import Backoff
    from worker.logs import KAFKA
    from worker.stream.process_delivery import ProcessProducer

    topics, tp, owners = await _two_assigned_owners(kafka, ProcessProducer, "stable")
    log = logging.getLogger("test.stable")
    stop = asyncio.Event()
    backoff = Backoff(KAFKA, log)
    try:
        assert await owners[0][1].take_over({tp}, backoff, stop)
        await _hand_over_twenty(kafka, topics, tp, owners, backoff, stop)
    finally:
        for consumer, producers in owners:
            await producers.close()
            await consumer.stop()


async def test_a_stable_offset_fetch_waits_for_the_open_transaction(kafka: KafkaBroker) -> None:
    """While a transaction holds a partition's offset (TxnOffsetCommit sent, not yet committed),
    OffsetFetch with ``require_stable`` is answered UNSTABLE_OFFSET_COMMIT and asked again, so
    :func:`fetch_stable` returns only once the transaction ends, with its offset; aiokafka's own
    fetch answers the old offset meanwhile."""
    import logging

    from worker.backoff import Backoff
    from worker.logs import KAFKA
    from worker.stream.group_txn import fetch_stable
    from worker.stream.kafka import make_consumer
    from worker.stream.process_delivery import ProcessProducer

    topics = await create_topics(kafka.bootstrap, partitions=1)
    settings = settings_of(kafka_env(kafka, topics, "unstable"))
    tp = TopicPartition(topics.inbound, 0)
    log = logging.getLogger("test.unstable")
    stop = asyncio.Event()
    consumer = make_consumer(settings, settings.group_id)
    await consumer.start()
    consumer.assign([tp])
    owner = ProcessProducer(settings, consumer, log)
    try:
        assert await owner.take_over({tp}, Backoff(KAFKA, log), stop)
        producer = owner.producer
        assert producer is not None
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction({tp: 7}, settings.group_id)  # pending in the txn
        waiting = asyncio.ensure_future(fetch_stable(consumer, settings.group_id, [tp], stop))
        await asyncio.sleep(1.0)
        assert not waiting.done()  # unstable: asked again and again
        assert await consumer.committed(tp) is None  # aiokafka's fetch: the old answer (nothing)
        await producer.commit_transaction()
        assert await asyncio.wait_for(waiting, 10) == {tp: 7}
    finally:
        await owner.close()
        await consumer.stop()
