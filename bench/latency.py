"""Latency and soak benchmark: how long from an MO produced to its change event acknowledged, under a
steady offered load, and whether the classifier's memory stays flat while it runs.

``python -m bench.latency [--broker tansu|kafka] [--rate R] [--seconds S] [--warmup W] [--mix NAME] [--json]``
(``make bench-latency``: 20,000 MO/s timed for 60 s; ``make bench-soak``: 25,000 MO/s for 10 minutes).

1. Starts its own broker (Tansu, or Apache Kafka with ``--broker kafka``) and creates the topics
   (4 partitions; on Apache Kafka the inbound and reply topics keep two minutes, so a long soak
   does not fill the disk), then runs ``optout classifier`` as a real child process.
2. A load generator (another child process) produces the mix's MOs (:mod:`bench.peers.mixes`,
   the campaign replies by default) at ``--rate`` per second, in chunks every 2 ms, each MO's
   ``received_at`` set to the moment its chunk is produced.
3. This process reads the change topic as the projector and the send services do (read_committed:
   under exactly-once an event counts once its transaction is committed). For each change event
   (its ``occurred_at`` is its MO's ``received_at``) it records two delays: to the record's
   timestamp, and to the moment this reader receives it (after the broker acknowledged it and,
   under exactly-once, its transaction committed: an upper bound). On Apache
   Kafka the change topic uses ``LogAppendTime``, so the timestamp is when the broker appended the
   event, which on one broker with acks=all is when it is acknowledged; Tansu keeps the
   producer's ``CreateTime``, the moment the classifier built the batch (just before sending).
4. Every ``--sample`` seconds it reads the classifier's resident memory and CPU, the broker's CPU
   and the machine's CPU times from ``/proc``.

The load runs ``--warmup`` seconds, then ``--seconds`` more, which are timed. The warm-up is longer
on Apache Kafka (90 s; 10 s on Tansu) because a freshly started broker is not the broker a platform
runs: its JVM compiles the hot paths during the first minute of load. Measured with Java Flight
Recorder on this 2-core box (stop 37, exactly-once at 20,000 MO/s): the C2 compiler thread alone
used 0.4-0.6 of a core for the first 40 s of load and 0.07 by the 60th; the broker used 1.04-1.08
cores over seconds 10-60 and 0.79-0.85 over seconds 90-150, and the p99 fell from 104-133 ms to
76-85 ms. Ten seconds of warm-up measured the JIT as much as the classifier.

Reports the delays' p50/p90/p99/max over the timed seconds, the load actually delivered, the memory at
the end of the first minute against the end of the run, the classifier's CPU-seconds per
million MOs, and how busy the machine was meanwhile: its CPUs' busy and stolen shares and the
cores that the broker, the classifier, the load generator and this reader used. On a 2-core box
that runs all four at once, a run whose CPUs were ~100% busy measured queueing behind the CPUs as
much as the classifier (exactly-once at 20,000 MO/s, warm: Apache Kafka 0.8 cores, the classifier
0.47, the load generator 0.38 and this reader 0.19). Never asserts. Targets (issue 16): p99 <= 50 ms at 20k
MO/s offered; memory within 10% over a 10-minute soak at half the peak rate.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.classifier import PERCENTILES, percentile_ms
from bench.peers.compare import cpu_seconds_of
from bench.propagation import _now, _spawn
from worker.dev.run import stop_children

#: The fixed-width stand-in for ``received_at`` in the generated records, replaced at produce time.
PLACEHOLDER = b"2000-01-01T00:00:00.000000Z"
#: Default seconds of load before delays, memory and CPU are counted, per broker: group join, first
#: fetches, warm caches, and on Apache Kafka the broker's JIT (the module's docstring).
WARMUP_SECONDS = {"kafka": 90.0, "tansu": 10.0}
#: Chunk interval of the load generator.
TICK_SECONDS = 0.002


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from bench.peers.mixes import MIXES

    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu", help="broker (tansu)")
    parser.add_argument("--rate", type=int, default=20_000, help="offered MOs per second (20000)")
    parser.add_argument("--seconds", type=int, default=60, help="seconds timed, after the warm-up (60)")
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds of load before the timed ones (90 on Apache Kafka: its JIT; 10 on Tansu)",
    )
    parser.add_argument("--mix", choices=sorted(MIXES), default="campaign", help="traffic mix (campaign)")
    parser.add_argument(
        "--delivery",
        choices=("auto", "at-least-once", "exactly-once"),
        default="auto",
        help="the classifier's OPTOUT_DELIVERY (auto: exactly-once on Apache Kafka, at-least-once on Tansu)",
    )
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples (5)")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="time the classifier's transactions and broker requests (bench.txntrace; exactly-once)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--load-gen", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = WARMUP_SECONDS[args.broker]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_gen:
        bootstrap, topic, rate, seconds, mix = args.load_gen
        asyncio.run(load_generator(bootstrap, topic, int(rate), float(seconds), mix))
        return 0
    report = asyncio.run(run(args))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else render(report))
    return 0


def _records(mix_name: str) -> list[tuple[str | None, bytes | None, bytes]]:
    """The mix's MOs with ``received_at`` replaced by :data:`PLACEHOLDER` (no bad records)."""
    from bench.peers.mixes import MIXES
    from bench.workload import Workload, generate

    mix = MIXES[mix_name]
    shares = tuple(mix.shares.items()) if mix.shares else None
    out: list[tuple[str | None, bytes | None, bytes]] = []
    for record in generate(
        Workload(messages=200_000, keyword_ratio=mix.keyword_ratio, bad_ratio=0.0, keyword_shares=shares)
    ):
        doc = orjson.loads(record.value)
        doc["received_at"] = PLACEHOLDER.decode()
        out.append((None, record.key, orjson.dumps(doc)))
    return out


async def load_generator(bootstrap: str, topic: str, rate: int, seconds: float, mix: str) -> None:
    """Produce ``rate`` MOs per second for ``seconds`` (or until SIGTERM), whole batches per
    partition (:func:`worker.stream.produce.send_batches`); print what was sent."""
    from aiokafka import AIOKafkaProducer

    from worker.stream.produce import send_batches

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    records = _records(mix)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent = 0
    started = time.monotonic()
    late = 0.0
    try:
        while not stop.is_set() and time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate) - sent
            if due <= 0:
                await asyncio.sleep(TICK_SECONDS)
                continue
            late = max(late, due / rate)
            stamp = _now().encode()
            chunk = [
                (topic, key, value.replace(PLACEHOLDER, stamp))
                for _, key, value in (records[(sent + i) % len(records)] for i in range(min(due, 5_000)))
            ]
            failure = await send_batches(producer, chunk)
            if failure is not None:
                raise failure[1]
            sent += len(chunk)
    finally:
        await producer.stop()
        report = {"sent": sent, "seconds": time.monotonic() - started, "most_behind_s": round(late, 3)}
        print(orjson.dumps(report).decode(), flush=True)


@dataclass(slots=True)
class Samples:
    """What the reader and the sampler collect."""

    stamped: list[float] = field(default_factory=list)
    """MO to the change event's record timestamp: handed to the producer (CreateTime), or appended
    by the broker (LogAppendTime, Apache Kafka here)."""
    log_append_time: bool = False
    received: list[float] = field(default_factory=list)
    changes: int = 0
    memory: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since the load started, classifier RSS in kB)."""
    cpu: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the load started, classifier CPU seconds)."""
    broker_cpu: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the load started, broker CPU seconds)."""
    load_generator_cpu: list[tuple[float, float]] = field(default_factory=list)
    reader_cpu: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the load started, this process's CPU seconds: the reader and the sampler)."""
    machine: list[tuple[float, CpuTimes]] = field(default_factory=list)
    """(seconds since the load started, the machine's CPU times so far)."""


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine's CPU time so far, all CPUs together, in clock ticks (``/proc/stat``)."""

    busy: int
    """user, nice, system, irq, softirq and steal: time the CPUs were not free to run us."""
    steal: int
    """Taken by the hypervisor for other guests: the share a shared cloud box loses."""
    total: int

    @classmethod
    def parse(cls, stat: str) -> CpuTimes:
        """From the text of ``/proc/stat`` (its first line, ``cpu  user nice system idle iowait
        irq softirq steal guest guest_nice``; guest time is already in user and nice)."""
        fields = [int(value) for value in stat.split("\n", 1)[0].split()[1:9]]
        fields += [0] * (8 - len(fields))  # old kernels stop before steal
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        busy = user + nice + system + irq + softirq + steal
        return cls(busy=busy, steal=steal, total=busy + idle + iowait)

    @classmethod
    def now(cls) -> CpuTimes | None:
        try:
            return cls.parse(Path("/proc/stat").read_text())
        except (OSError, ValueError):
            return None


def machine_load(first: CpuTimes, last: CpuTimes) -> dict[str, float] | None:
    """The busy and stolen shares of the CPUs' time between two readings, in percent."""
    total = last.total - first.total
    if total <= 0:
        return None
    return {
        "busy_pct": round((last.busy - first.busy) / total * 100, 1),
        "steal_pct": round((last.steal - first.steal) / total * 100, 1),
    }


def cores_used(cpu: list[tuple[float, float]], since: float, until: float = float("inf")) -> float | None:
    """A process's mean CPU use, in cores, from its samples from ``since`` to ``until``."""
    kept = [(t, seconds) for t, seconds in cpu if since <= t <= until]
    if len(kept) < 2 or kept[-1][0] <= kept[0][0]:
        return None
    return round((kept[-1][1] - kept[0][1]) / (kept[-1][0] - kept[0][0]), 2)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from worker.config import Settings

    with tempfile.TemporaryDirectory(prefix="optout-bench-latency-") as tmp:
        work = Path(tmp)
        trace = work / "trace.json"  # --trace: bench.txntrace's summary, written as the classifier exits
        broker: Any
        if args.broker == "kafka":
            from worker.dev.stack import start_kafka

            _say("starting Apache Kafka ...")
            broker = start_kafka(work / "kafka")
        else:
            from worker.dev.stack import start_broker

            broker = start_broker(log_path=work / "tansu.log")
        suffix = uuid.uuid4().hex[:8]
        env = {
            "OPTOUT_KAFKA_BOOTSTRAP": broker.bootstrap,
            "OPTOUT_TOPIC_INBOUND": f"bench.latency.inbound.{suffix}",
            "OPTOUT_TOPIC_CHANGES": f"bench.latency.changes.{suffix}",
            "OPTOUT_TOPIC_REPLIES": f"bench.latency.replies.{suffix}",
            "OPTOUT_TOPIC_DEAD_LETTER": f"bench.latency.dlq.{suffix}",
            "OPTOUT_GROUP_ID": f"bench-latency-{suffix}",
            "OPTOUT_METRICS_PORT": "0",
            "OPTOUT_LOG_LEVEL": "WARNING",
            "OPTOUT_DELIVERY": args.delivery,
        }
        settings = Settings.from_mapping(env)
        children: list[subprocess.Popen[bytes]] = []
        try:
            await _create_topics(broker.bootstrap, settings, kafka=args.broker == "kafka")
            command = ["-m", "bench.txntrace", str(trace)] if args.trace else ["-m", "worker"]
            classifier = _spawn([*command, "classifier"], env, work / "classifier.log")
            children.append(classifier)
            samples = Samples()
            _say(
                f"{args.mix} mix at {args.rate:,} MO/s on {args.broker}: {args.warmup:.0f} s of warm-up, "
                f"then {args.seconds} s timed"
            )
            load_seconds = args.warmup + args.seconds
            loader = _spawn(
                [
                    "-m",
                    "bench.latency",
                    "--load-gen",
                    broker.bootstrap,
                    settings.topic_inbound,
                    str(args.rate),
                    str(load_seconds),
                    args.mix,
                ],
                env,
                None,
            )
            children.append(loader)
            started = time.time()
            reader = asyncio.create_task(
                _read_changes(broker.bootstrap, settings.topic_changes, started + args.warmup, samples)
            )
            sampler = asyncio.create_task(
                _sample(classifier.pid, broker.process.pid, loader.pid, started, args.sample, samples)
            )
            loaded = await asyncio.to_thread(_wait_loader, loader, load_seconds + 120)
            await asyncio.sleep(3)  # the classifier's last batches reach the reader
            for task in (reader, sampler):
                task.cancel()
            await asyncio.gather(reader, sampler, return_exceptions=True)
        finally:
            stop_children(children, 60)
            broker.stop()
        traced = orjson.loads(trace.read_bytes()) if args.trace and trace.exists() else None
    return {**_report(args, loaded, samples), "transactions_traced": traced}


async def _create_topics(bootstrap: str, settings: Any, *, kafka: bool) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    # On Apache Kafka a long soak would keep every MO on disk: the inbound and reply topics keep two
    # minutes in 16 MB segments (the change topic is compacted, as in production).
    short = {"retention.ms": "120000", "segment.bytes": str(16 * 1024 * 1024)} if kafka else {}
    # Apache Kafka stamps each change event with the time it appended it (one broker, acks=all: the
    # ack follows at once), so the delay to the record's timestamp is the delay to "acknowledged".
    stamped = {"message.timestamp.type": "LogAppendTime"} if kafka else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(settings.topic_inbound, 4, 1, topic_configs=short),
                NewTopic(
                    settings.topic_changes, 4, 1, topic_configs={"cleanup.policy": "compact", **stamped}
                ),
                NewTopic(settings.topic_replies, 4, 1, topic_configs=short),
                NewTopic(settings.topic_dead_letter, 4, 1),
            ]
        )
        failed = [(name, code) for name, code, *_ in response.topic_errors if code != 0]
        if failed:
            raise RuntimeError(f"cannot create topics: {failed}")
    finally:
        await admin.close()


async def _read_changes(bootstrap: str, topic: str, timed_from: float, samples: Samples) -> None:
    """Time each change event read from ``timed_from`` (epoch seconds) on, read_committed as the
    projector and send services read (the same as read_uncommitted without transactions)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            if now < timed_from:
                continue
            for records in batch.values():
                for record in records:
                    occurred = _epoch(orjson.loads(record.value)["occurred_at"])
                    samples.stamped.append(record.timestamp / 1000 - occurred)
                    samples.log_append_time = record.timestamp_type == 1
                    samples.received.append(now - occurred)
                    samples.changes += 1
    finally:
        await consumer.stop()


async def _sample(
    pid: int, broker_pid: int, loader_pid: int, started: float, every: float, samples: Samples
) -> None:
    while True:
        at = time.time() - started
        rss = _rss_kb(pid)
        if rss:
            samples.memory.append((at, rss))
            samples.cpu.append((at, cpu_seconds_of(pid)))
        samples.broker_cpu.append((at, cpu_seconds_of(broker_pid)))
        samples.load_generator_cpu.append((at, cpu_seconds_of(loader_pid)))
        samples.reader_cpu.append((at, time.process_time()))
        machine = CpuTimes.now()
        if machine is not None:
            samples.machine.append((at, machine))
        await asyncio.sleep(every)


def _wait_loader(loader: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, _ = loader.communicate(timeout=timeout)
    lines = (out or b"").splitlines()
    return dict(orjson.loads(lines[-1])) if lines else {}


def _report(args: argparse.Namespace, loaded: dict[str, Any], samples: Samples) -> dict[str, Any]:
    def percentiles(values: list[float]) -> dict[str, float | None]:
        ordered = sorted(values)  # once: percentile_ms sorts again, in linear time on sorted input
        return {f"{name}_ms": percentile_ms(ordered, q) for name, q in PERCENTILES}

    warmup, load_seconds = args.warmup, args.warmup + args.seconds
    after_warmup = [(t, kb) for t, kb in samples.memory if t >= warmup]
    first_minute = [kb for t, kb in after_warmup if t <= warmup + 60] or [kb for _, kb in after_warmup[:1]]
    last_minute = [kb for t, kb in after_warmup if t >= load_seconds - 60]
    memory: dict[str, Any] = {}
    if first_minute and last_minute:
        base, end = max(first_minute), max(last_minute)
        memory = {
            "first_minute_max_mb": round(base / 1024, 1),
            "last_minute_max_mb": round(end / 1024, 1),
            "peak_mb": round(max(kb for _, kb in after_warmup) / 1024, 1),
            "growth_pct": round((end - base) / base * 100, 1),
            "samples": len(after_warmup),
        }
    # Up to the load's end: a sample in the quiet seconds after it would spread the CPU over them.
    cpu = [(t, s) for t, s in samples.cpu if warmup <= t <= load_seconds]
    sent, seconds = loaded.get("sent", 0), loaded.get("seconds") or 0
    delivered = sent / seconds if seconds else 0.0
    cpu_per_million = None
    if len(cpu) >= 2 and delivered:
        span = cpu[-1][0] - cpu[0][0]
        cpu_per_million = round((cpu[-1][1] - cpu[0][1]) / (delivered * span) * 1e6, 1) if span else None
    return {
        "broker": args.broker,
        "delivery": args.delivery,
        "mix": args.mix,
        "offered_per_s": args.rate,
        "delivered_per_s": round(delivered),
        "load_most_behind_s": loaded.get("most_behind_s"),
        "seconds": args.seconds,
        "warmup_s": warmup,
        "change_events_timed": samples.changes,
        "stamp": "appended by the broker" if samples.log_append_time else "handed to the producer",
        "mo_to_stamp": percentiles(samples.stamped),
        "mo_to_committed_and_read": percentiles(samples.received),
        "classifier_memory": memory,
        "classifier_cpu_s_per_million": cpu_per_million,
        "machine": _machine(samples, warmup, load_seconds),
    }


def _machine(samples: Samples, warmup: float, load_seconds: float) -> dict[str, Any]:
    """How busy the machine was from the warm-up's end to the load's: its CPUs, and the cores of
    each process on it (not the quieter seconds after the load, while the reader catches up)."""
    timed = [times for t, times in samples.machine if warmup <= t <= load_seconds]
    load = machine_load(timed[0], timed[-1]) if len(timed) >= 2 else None
    return {
        **(load or {}),
        "broker_cores": cores_used(samples.broker_cpu, warmup, load_seconds),
        "classifier_cores": cores_used(samples.cpu, warmup, load_seconds),
        "load_generator_cores": cores_used(samples.load_generator_cpu, warmup, load_seconds),
        "reader_cores": cores_used(samples.reader_cpu, warmup, load_seconds),
    }


def render(report: dict[str, Any]) -> str:
    def row(name: str, p: dict[str, Any]) -> str:
        return (
            f"  {name:<36} p50 {p['p50_ms']} ms  p90 {p['p90_ms']} ms  p99 {p['p99_ms']} ms  "
            f"max {p['max_ms']} ms"
        )

    memory = report["classifier_memory"]
    lines = [
        f"{report['mix']} mix on {report['broker']} (delivery {report['delivery']}): "
        f"{report['offered_per_s']:,} MO/s offered, "
        f"{report['delivered_per_s']:,} delivered (load at most {report['load_most_behind_s']} s behind); "
        f"{report['change_events_timed']:,} change events timed over {report['seconds']} s after "
        f"{report['warmup_s']:.0f} s of warm-up",
        row(f"MO -> change event {report['stamp']}", report["mo_to_stamp"]),
        row("MO -> change event committed and read", report["mo_to_committed_and_read"]),
    ]
    if memory:
        lines.append(
            f"  classifier RSS: first minute max {memory['first_minute_max_mb']} MB, last minute max "
            f"{memory['last_minute_max_mb']} MB ({memory['growth_pct']:+}%), peak {memory['peak_mb']} MB; "
            f"CPU {report['classifier_cpu_s_per_million']} s per million MOs"
        )
    if report.get("transactions_traced"):
        from bench.txntrace import render as render_trace

        lines.extend(render_trace(report["transactions_traced"]))
    machine = report.get("machine") or {}
    if machine.get("busy_pct") is not None:
        lines.append(
            f"  machine after warm-up: CPUs {machine['busy_pct']}% busy ({machine['steal_pct']}% stolen "
            f"by the host); broker {machine['broker_cores']} cores, "
            f"classifier {machine['classifier_cores']} cores, load generator "
            f"{machine.get('load_generator_cores')} cores, reader {machine.get('reader_cores')} cores"
        )
    return "\n".join(lines)


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant).timestamp()


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _say(message: str) -> None:
    print(f"[bench.latency] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
