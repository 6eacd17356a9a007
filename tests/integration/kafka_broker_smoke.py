"""Smoke check: aiokafka against the Apache Kafka 4.x broker that ``worker/dev/kafka_broker.py`` starts.

Not a pytest module yet (the integration suite will grow fixtures from it): a script that proves,
one printed line per check with its time, that the features the issue relies on work with the
aiokafka we pin, on the real broker rather than Tansu:

    PYTHONPATH=. .venv/bin/python tests/integration/kafka_broker_smoke.py [--keep] [--measure-download]

It starts a broker in a temporary directory (with SASL_SSL/SCRAM-SHA-512 and mTLS listeners), runs
every check, restarts the broker on the same data (warm start), stops it and proves no java process
is left. Exit status 1 if any check failed. ``--measure-download`` also times a first-ever jar fetch
into an empty Maven repository and cache (about 45 MB from Maven Central).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import GroupCoordinatorNotAvailableError, OffsetOutOfRangeError
from aiokafka.helpers import create_ssl_context

ROOT = Path(__file__).resolve().parents[2]


def _load_kafka_broker() -> ModuleType:
    """``worker/dev/kafka_broker.py`` by path: ``worker.dev`` is still a module (dev.py) until the
    layout change (issue 8) makes ``worker/dev/`` a package; then this becomes a plain import."""
    spec = importlib.util.spec_from_file_location("kafka_broker", ROOT / "worker" / "dev" / "kafka_broker.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kafka_broker"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


kb = _load_kafka_broker()

USER, PASSWORD = "optout", "right-password-1"
results: list[tuple[str, bool]] = []


async def check(name: str, body: Callable[[], Awaitable[str]]) -> None:
    """Run one check, print ``PASS/FAIL name (seconds) detail`` and remember the outcome."""
    began = time.monotonic()
    try:
        detail, ok = await body(), True
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}", False
        traceback.print_exc()
    print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - began:.2f}s) {detail}", flush=True)
    results.append((name, ok))


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def consume_all(bootstrap: str, topic: str, **options: Any) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of partition 0 from the beginning up to the end the consumer sees (LSO for
    read_committed), as (key, value) pairs."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 20
        while await consumer.position(tp) < end and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def run_checks(broker: Any) -> None:
    bootstrap: str = broker.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()

    async def admin_api() -> str:
        # Every admin call the worker or tests might make, so a protocol gap shows up here by name.
        await admin.create_topics([NewTopic("smoke-admin", 1, 1)])
        cluster = await admin.describe_cluster()
        expect(len(cluster["brokers"]) == 1, f"describe_cluster: {cluster}")
        expect("smoke-admin" in await admin.list_topics(), "list_topics misses smoke-admin")
        await admin.describe_topics(["smoke-admin"])
        await admin.create_partitions({"smoke-admin": NewPartitions(2)})
        retention = {"retention.ms": "600000"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "smoke-admin", retention)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        for i in range(5):
            await producer.send_and_wait("smoke-admin", b"x%d" % i, partition=0)
        await producer.stop()
        low = await admin.delete_records({TopicPartition("smoke-admin", 0): RecordsToDelete(3)})
        expect(low[TopicPartition("smoke-admin", 0)] == 3, f"delete_records low watermark {low}")
        await admin.list_consumer_groups()
        # On a fresh broker the first FindCoordinator creates __consumer_offsets and answers
        # COORDINATOR_NOT_AVAILABLE (retriable); aiokafka's admin client does not retry it.
        for attempt in range(50):
            try:
                await admin.find_coordinator("smoke-nogroup")
                break
            except GroupCoordinatorNotAvailableError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        await admin.delete_topics(["smoke-admin"])
        return (
            "create/describe/list/partitions/alter/delete_records/groups/delete answered; find_coordinator "
            f"after {attempt} COORDINATOR_NOT_AVAILABLE answers"
        )

    async def compacted_topic() -> str:
        configs = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}
        created = await admin.create_topics([NewTopic("smoke-compact", 1, 1, topic_configs=configs)])
        expect(created.topic_errors[0][1] == 0, f"create_topics: {created.topic_errors}")
        # create_topics returns once the controller committed the topic; the broker that answers
        # DescribeConfigs may not have applied that metadata yet and says UNKNOWN_TOPIC_OR_PARTITION
        # (error 3) with no entries. Retry, and report how often that happened.
        began, first_error = time.monotonic(), None
        while True:
            resource = (
                await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "smoke-compact")])
            )[0].resources[0]
            first_error = resource[0] if first_error is None else first_error
            if resource[0] == 0 or time.monotonic() - began > 10:
                break
            await asyncio.sleep(0.01)
        entries = {e[0]: e[1] for e in resource[4]}
        policy = entries.get("cleanup.policy")
        expect(policy == "compact", f"cleanup.policy is {policy}")
        return (
            f"cleanup.policy=compact, segment.ms=100, min.cleanable.dirty.ratio=0.01; first DescribeConfigs "
            f"error code {first_error}, answered after {(time.monotonic() - began) * 1000:.0f} ms"
        )

    async def produce_consume() -> str:
        await admin.create_topics([NewTopic("smoke-plain", 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        for i in range(100):
            await producer.send("smoke-plain", b"v%d" % i, key=b"k%d" % i)
        await producer.flush()
        await producer.stop()
        got = await consume_all(bootstrap, "smoke-plain")
        expect([v for _, v in got] == [b"v%d" % i for i in range(100)], f"got {len(got)} records")
        return "100 records in order"

    async def idempotent() -> str:
        await admin.create_topics([NewTopic("smoke-idem", 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        batch = [producer.send("smoke-idem", b"i%d" % i) for i in range(200)]
        metadata = [await fut for fut in await asyncio.gather(*batch)]
        await producer.stop()
        got = await consume_all(bootstrap, "smoke-idem")
        expect(len(got) == 200 and len(set(got)) == 200, f"{len(got)} records, {len(set(got))} distinct")
        return f"200 sent, 200 read once each, last offset {metadata[-1].offset}"

    async def transactional() -> str:
        # consume-transform-produce: the input offset is committed inside the output's transaction
        await admin.create_topics([NewTopic("smoke-tx-in", 1, 1), NewTopic("smoke-tx-out", 1, 1)])
        plain = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await plain.start()
        for i in range(10):
            await plain.send_and_wait("smoke-tx-in", b"in%d" % i)
        await plain.stop()
        consumer = AIOKafkaConsumer(
            "smoke-tx-in",
            bootstrap_servers=bootstrap,
            group_id="smoke-tx-group",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        tx = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="smoke-tx-1")
        await tx.start()
        tp = TopicPartition("smoke-tx-in", 0)
        seen = 0
        deadline = time.monotonic() + 20
        while seen < 10 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                continue
            async with tx.transaction():
                for records in batch.values():
                    for record in records:
                        await tx.send("smoke-tx-out", record.value.upper())
                        seen += 1
                await tx.send_offsets_to_transaction({tp: await consumer.position(tp)}, "smoke-tx-group")
        # aiokafka's OffsetFetch is v3 at most, without KIP-447's require_stable: right after the
        # commit the broker may still answer the last *stable* offset until the transaction markers
        # reach __consumer_offsets. Measure that window instead of hiding it.
        began = time.monotonic()
        first_committed = committed = await consumer.committed(tp)
        while committed != 10 and time.monotonic() - began < 10:
            await asyncio.sleep(0.005)
            committed = await consumer.committed(tp)
        stable_after = time.monotonic() - began
        await consumer.stop()
        # an aborted transaction on the same output topic
        await tx.begin_transaction()
        await tx.send_and_wait("smoke-tx-out", b"ABORTED")
        await tx.abort_transaction()
        await tx.stop()
        committed_records = await consume_all(bootstrap, "smoke-tx-out", isolation_level="read_committed")
        read_committed = [v for _, v in committed_records]
        read_uncommitted = [v for _, v in await consume_all(bootstrap, "smoke-tx-out")]
        offsets = await admin.list_consumer_group_offsets("smoke-tx-group")
        expect(committed == 10, f"committed offset {committed}, want 10")
        expect(offsets[tp].offset == 10, f"admin sees committed {offsets[tp]}")
        expect(read_committed == [b"IN%d" % i for i in range(10)], f"read_committed saw {read_committed}")
        expect(b"ABORTED" in read_uncommitted, "the aborted record was never written")
        return (
            f"10 outputs + offset 10 committed atomically; read_committed sees {len(read_committed)} "
            f"(aborted record invisible), read_uncommitted sees {len(read_uncommitted)}; committed() "
            f"right after commit_transaction: {first_committed}, 10 after {stable_after * 1000:.0f} ms"
        )

    async def group_commit_and_rebalance() -> str:
        # JoinGroup/SyncGroup/Heartbeat/OffsetCommit/OffsetFetch as the classifier uses them, and a
        # second member joining: the classic protocol must split 4 partitions 2 + 2.
        await admin.create_topics([NewTopic("smoke-group", 4, 1)])
        options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": "smoke-group",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
        }
        first = AIOKafkaConsumer("smoke-group", **options)
        await first.start()
        await first.getmany(timeout_ms=500)
        tp = TopicPartition("smoke-group", 0)
        await first.commit({tp: 7})
        committed = await first.committed(tp)
        second = AIOKafkaConsumer("smoke-group", **options)
        joined = time.monotonic()
        await second.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(first.assignment()), len(second.assignment())) != (2, 2):
            await asyncio.gather(first.getmany(timeout_ms=200), second.getmany(timeout_ms=200))
        rebalanced = time.monotonic() - joined
        split = (len(first.assignment()), len(second.assignment()))
        groups = await admin.describe_consumer_groups(["smoke-group"])
        members = len(groups[0].groups[0][5]) if groups and groups[0].groups else 0
        await asyncio.gather(first.stop(), second.stop())
        expect(committed == 7, f"committed {committed}, want 7")
        expect(split == (2, 2), f"assignment split {split}")
        expect(members == 2, f"describe_consumer_groups lists {members} members")
        return (
            f"commit/committed round-trip; a second member took 2 of 4 partitions in {rebalanced:.1f}s; "
            "describe_consumer_groups lists both"
        )

    async def end_offsets_and_out_of_range() -> str:
        tp = TopicPartition("smoke-plain", 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        expect(end == 100, f"end_offsets {end}, want 100")
        by_time = await consumer.offsets_for_times({tp: 0})
        expect(by_time[tp] is not None and by_time[tp].offset == 0, f"offsets_for_times {by_time}")
        consumer.seek(tp, end + 50)
        got = await consumer.getmany(tp, timeout_ms=5000)
        first = got[tp][0].offset if got.get(tp) else None
        await consumer.stop()
        expect(first == 0, f"after a seek past the end, earliest reset gave first offset {first}")
        strict = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="none")
        await strict.start()
        strict.assign([tp])
        strict.seek(tp, end + 50)
        try:
            await strict.getmany(tp, timeout_ms=5000)
            raised = "nothing"
        except OffsetOutOfRangeError as exc:
            raised = f"{type(exc).__name__}({exc})"
        finally:
            await strict.stop()
        expect(raised.startswith("OffsetOutOfRangeError"), f"auto_offset_reset='none' raised {raised}")
        # The transactional topic: 10 data + 2 markers + 1 aborted + 1 marker; the LSO equals the end.
        tx_tp = TopicPartition("smoke-tx-out", 0)
        rc = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
        await rc.start()
        tx_end = (await rc.end_offsets([tx_tp]))[tx_tp]
        await rc.stop()
        return (
            f"end_offsets=100 for 100 records, offsets_for_times(0)=0; seek to 150 -> reset to 0 (earliest); "
            f"auto_offset_reset='none' raises {raised}; tx topic end {tx_end} (markers count)"
        )

    async def compaction() -> str:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        for version in range(10):
            for key in range(10):
                await producer.send("smoke-compact", b"v%d" % version, key=b"k%d" % key)
        await producer.flush()
        await asyncio.sleep(0.3)  # past segment.ms: the next record rolls the segment; the rest is cleanable
        await producer.send_and_wait("smoke-compact", b"roll", key=b"roll")
        deadline = time.monotonic() + 30
        while True:
            got = await consume_all(bootstrap, "smoke-compact")
            latest = dict(got)
            if len(got) < 101 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
            await producer.send_and_wait("smoke-compact", b"roll", key=b"roll")
        await producer.stop()
        expect(len(got) < 101, f"still {len(got)} records: the cleaner did not run")
        expect(all(latest[b"k%d" % k] == b"v9" for k in range(10)), f"latest values wrong: {latest}")
        return f"101+ records compacted to {len(got)}, every key keeps its last value"

    await check("admin API surface", admin_api)
    await check("compacted topic created", compacted_topic)
    await check("produce/consume", produce_consume)
    await check("idempotent producer", idempotent)
    await check("transactional producer + send_offsets_to_transaction + read_committed/abort", transactional)
    await check("consumer group: commit and rebalance", group_commit_and_rebalance)
    await check("end_offsets and seek past the log end", end_offsets_and_out_of_range)
    await check("log compaction ran", compaction)
    await admin.close()

    tls = broker.tls
    ssl_context = create_ssl_context(cafile=str(tls.ca_cert))
    mtls_context = create_ssl_context(
        cafile=str(tls.ca_cert), certfile=str(tls.client_cert), keyfile=str(tls.client_key)
    )

    def sasl(password: str) -> dict[str, Any]:
        return {
            "bootstrap_servers": broker.sasl_ssl_bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_context": ssl_context,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": USER,
            "sasl_plain_password": password,
        }

    async def sasl_right() -> str:
        producer = AIOKafkaProducer(**sasl(PASSWORD))
        await producer.start()
        await producer.send_and_wait("smoke-plain", b"over-sasl")
        await producer.stop()
        got = await consume_all(broker.sasl_ssl_bootstrap, "smoke-plain", **{
            k: v for k, v in sasl(PASSWORD).items() if k != "bootstrap_servers"
        })  # fmt: skip
        expect(got[-1][1] == b"over-sasl", "the record sent over SASL_SSL did not come back")
        return "produced and consumed over SASL_SSL"

    async def sasl_wrong() -> str:
        # The raised error says only "Unable to bootstrap"; the cause exists only as the argument of
        # an ERROR record on the "aiokafka" logger. Capture it to show what a one-line message needs.
        logged: list[BaseException] = []
        handler = logging.Handler()
        handler.emit = lambda record: logged.extend(  # type: ignore[method-assign]
            a for a in (record.args or ()) if isinstance(a, BaseException)
        )
        logging.getLogger("aiokafka").addHandler(handler)
        lines = []
        for label, client in (
            ("producer", AIOKafkaProducer(**sasl("wrong"), request_timeout_ms=5000)),
            ("consumer", AIOKafkaConsumer(**sasl("wrong"), request_timeout_ms=5000)),
            ("admin", AIOKafkaAdminClient(**sasl("wrong"), request_timeout_ms=5000)),
        ):
            try:
                await asyncio.wait_for(client.start(), 30)
                lines.append(f"{label}: NO ERROR")
            except Exception as exc:
                cause = logged[-1] if logged else None
                lines.append(
                    f"{label}: raised {type(exc).__module__}.{type(exc).__name__}: {exc} "
                    f"(__cause__={exc.__cause__!r}); logged cause {type(cause).__name__}: {cause}"
                )
            finally:
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
        logging.getLogger("aiokafka").removeHandler(handler)
        expect(not any("NO ERROR" in line for line in lines), "a wrong password was accepted")
        return "\n    " + "\n    ".join(lines)

    async def mtls_right() -> str:
        options: dict[str, Any] = {"security_protocol": "SSL", "ssl_context": mtls_context}
        producer = AIOKafkaProducer(bootstrap_servers=broker.ssl_bootstrap, **options)
        await producer.start()
        await producer.send_and_wait("smoke-plain", b"over-mtls")
        await producer.stop()
        got = await consume_all(broker.ssl_bootstrap, "smoke-plain", **options)
        expect(got[-1][1] == b"over-mtls", "the record sent over mTLS did not come back")
        return "produced and consumed with a client certificate"

    async def mtls_without_cert() -> str:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.ssl_bootstrap, security_protocol="SSL", ssl_context=ssl_context
        )
        try:
            await asyncio.wait_for(producer.start(), 30)
            outcome = "NO ERROR"
        except Exception as exc:
            outcome = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        finally:
            await producer.stop()
        expect(outcome != "NO ERROR", "a client without a certificate was accepted")
        return outcome

    await check("SASL_SSL SCRAM-SHA-512, right password", sasl_right)
    await check("SASL_SSL SCRAM-SHA-512, wrong password (error per client)", sasl_wrong)
    await check("SSL with a client certificate", mtls_right)
    await check("SSL without a client certificate is refused", mtls_without_cert)


def java_processes_under(path: Path) -> list[int]:
    """Pids of live java processes whose command line mentions ``path`` (our broker's files)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"java") and any(str(path).encode() in a for a in argv):
                pids.append(int(entry.name))
    return pids


def measure_download() -> None:
    """A first-ever fetch: empty Maven repository, empty cache (both temporary)."""
    with tempfile.TemporaryDirectory(prefix="kafka-fetch-") as scratch:
        env_before = os.environ.get("MAVEN_OPTS")
        os.environ["MAVEN_OPTS"] = f"-Dmaven.repo.local={scratch}/m2"
        try:
            began = time.monotonic()
            libs = kb.ensure_jars(cache_dir=Path(scratch) / "cache")
            took = time.monotonic() - began
        finally:
            if env_before is None:
                del os.environ["MAVEN_OPTS"]
            else:
                os.environ["MAVEN_OPTS"] = env_before
        print(
            f"MEASURE first jar fetch {took:.1f}s: {len(list(libs.glob('*.jar')))} jars, "
            f"libs {du(libs)}, Maven repository {du(Path(scratch) / 'm2')}",
            flush=True,
        )


def du(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True).stdout.split()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--measure-download", action="store_true", help="time a first-ever jar fetch")
    args = parser.parse_args()
    if (missing := kb.missing_tools(need_maven=kb.cached_libs() is None)) is not None:
        print(f"SKIP Apache Kafka smoke: {missing}")
        return 0
    if args.measure_download:
        measure_download()
    began = time.monotonic()
    libs = kb.ensure_jars()
    print(f"MEASURE jars ready in {time.monotonic() - began:.3f}s (cached: {libs}, {du(libs)})", flush=True)

    data = Path(tempfile.mkdtemp(prefix="kafka-smoke-"))
    broker = kb.KafkaBroker(data / "broker", scram_users={USER: PASSWORD}, mtls=True)
    try:
        broker.start()
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in broker.timings.items())
        print(f"MEASURE cold start {sum(broker.timings.values()):.2f}s ({timings}); "
              f"RSS {broker.rss_bytes() / 2**20:.0f} MiB", flush=True)  # fmt: skip
        asyncio.run(run_checks(broker))
        print(f"MEASURE broker RSS after the checks {broker.rss_bytes() / 2**20:.0f} MiB", flush=True)
        began = time.monotonic()
        broker.stop()
        took = time.monotonic() - began
        print(f"MEASURE stop {took:.2f}s, exit code {broker.process.returncode}", flush=True)
        broker.start()
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in broker.timings.items())
        print(f"MEASURE warm start {sum(broker.timings.values()):.2f}s ({timings})", flush=True)

        async def survived() -> str:
            got = await consume_all(broker.bootstrap, "smoke-plain")
            expect(len(got) == 102, f"{len(got)} records after the restart, want 102")
            return "smoke-plain still holds its 102 records"

        asyncio.run(check("data survives a restart", survived))
    finally:
        broker.stop()
    pgid_alive = True
    try:
        os.killpg(broker.pid, 0)
    except ProcessLookupError:
        pgid_alive = False
    leftovers = java_processes_under(data)
    ok = not pgid_alive and not leftovers
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict} no java process left (group alive: {pgid_alive}, java pids: {leftovers})")
    results.append(("no java left", ok))
    if args.keep:
        print(f"data kept in {data}")
    else:
        shutil.rmtree(data)
    failed = [name for name, ok in results if not ok]
    summary = f"{len(results) - len(failed)}/{len(results)} checks passed"
    print(summary + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
