"""The peer benchmark (issue 16): every contender on the same input, for three traffic mixes.

``python -m bench.peers [--quick] [--messages N] [--repeats R] [--broker tansu|kafka] [--out PATH.json]``

One broker for the whole run: memory-only Tansu (the default), or Apache Kafka (``--broker
kafka``, one KRaft process, the reference broker; there the classifier's producer is idempotent).
Per mix: fresh topics, the same N inbound records produced once (:mod:`bench.workload`), then
every contender reads them from the start with a fresh consumer group, each in its own child
process (:mod:`bench.phases`), ``R`` times, rotating the order between repeats so that no
contender always runs first on a cold broker:

* ``ceiling``: plain aiokafka consume + ``orjson.loads``: the yardstick;
* ``classifier``: ``worker.stream.classifier.run_classifier`` with its default rules: the real thing;
* ``classifier-x2``: two classifier processes in one consumer group, started together, sharing the
  partitions (scale-out; :func:`run_scaled_out`);
* ``quix``: :mod:`bench.peers.quix_app`; ``faust``: :mod:`bench.peers.faust_app` (the simplest
  version of the job; optional, ``pip install -e '.[bench]'``).

Then it checks what each run wrote (the classifier's counters against the generator's labels,
each peer's output topic against what the peers' match should give), prints one table, writes
JSON and draws a PNG (:mod:`bench.peers.report`, :mod:`bench.peers.chart`).

Like the rest of bench/, it reports and never asserts a timing. Exit status: 0 when every run
finished and every check held (whatever the numbers), 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from bench.classifier import (
    REPO_ROOT,
    consistency_checks,
    count_topics,
    create_topics,
    progress,
    run_phase,
    run_phases,
)
from bench.peers.mixes import MIXES, Mix
from bench.phases import PhaseConfig, PhaseResult
from bench.workload import ACCOUNTS

#: Two classifier processes in one consumer group: the scale-out run.
SCALE_OUT = "classifier-x2"
SCALE_OUT_PROCESSES = 2
#: A scale-out run whose processes got their first records this far apart says so in its line.
START_SKEW_NOTED_S = 0.1
CONTENDERS = ("ceiling", "classifier", "quix", "faust", SCALE_OUT)
#: Apache Kafka's own default for a new group's first rebalance, where the dev broker (fast tests)
#: has 0: with 0 the first of the pair's processes took every partition and the whole backlog
#: before the second one joined, so the pair rows were one process's work (the README's Apache
#: Kafka section has the runs). Every group's join is outside its window.
BENCH_KAFKA_CONFIG = {"group.initial.rebalance.delay.ms": "3000"}
CLASSIFIERS = ("classifier", SCALE_OUT)
PEERS = {"quix": "quixstreams", "faust": "faust"}
BROKERS = {"tansu": "a Tansu broker (memory-only)", "kafka": "Apache Kafka (one KRaft process)"}
#: What --quick sets: a smoke run of about a minute and a half.
QUICK_MESSAGES, QUICK_REPEATS = 20_000, 1
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "latest.json"


@dataclass(slots=True)
class MixRun:
    """Everything measured for one mix, before aggregation."""

    mix: Mix
    produce: PhaseResult
    runs: dict[str, list[PhaseResult]] = field(default_factory=dict)
    outputs: dict[str, list[int]] = field(default_factory=dict)
    """Per contender and run: output records made durable (peers: counted on their topic)."""
    broker_cpu: dict[str, list[float]] = field(default_factory=dict)
    """Per contender and run: the broker's CPU seconds over the whole phase (join included)."""
    checks: list[dict[str, Any]] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description="The ceiling, the Quix Streams and faust peers and the classifier on one broker, "
        "the same input, three traffic mixes: msgs/s, ratios, CPU-s per million MOs, peak RSS.",
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_MESSAGES:,} MOs, 1 repeat")
    parser.add_argument("--messages", type=_positive, help="MOs per mix (200000; --quick: 20000)")
    parser.add_argument("--repeats", type=_positive, help="runs per contender and mix (2; --quick: 1)")
    parser.add_argument("--partitions", type=_positive, default=4, help="partitions per topic (4)")
    parser.add_argument("--mixes", type=_names(MIXES), default=list(MIXES), help="comma-separated mixes")
    parser.add_argument(
        "--contenders", type=_names(CONTENDERS), default=list(CONTENDERS), help="comma-separated"
    )
    parser.add_argument("--seed", type=int, default=20261124, help="workload seed")
    parser.add_argument("--accounts", type=_positive, default=ACCOUNTS, help=f"MO accounts ({ACCOUNTS})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report; the PNG goes beside it")
    parser.add_argument("--phase-timeout", type=_positive, default=600, help="seconds per run (600)")
    parser.add_argument("--broker", choices=BROKERS, default="tansu", help="tansu (default) or kafka")
    parser.add_argument("--broker-log", type=Path, help="write the Tansu broker's log here")
    args = parser.parse_args(argv)
    args.messages = args.messages or (QUICK_MESSAGES if args.quick else 200_000)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else 2)
    return args


def _positive(value: str) -> int:
    number = int(value.replace("_", ""))
    if number < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return number


def _names(known: Sequence[str] | dict[str, Any]) -> Any:
    def parse(value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(known))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(known)} (got {value!r})")
        return names

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    from bench.peers import chart, report

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # unwind like Ctrl-C: stop broker and child
    started = time.time()
    try:
        mix_runs, skipped = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: broker and running phase stopped", file=sys.stderr)
        return 130
    doc = report.build(args, mix_runs, skipped, started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    png = args.out.with_suffix(".png")
    chart_error = chart.draw(doc, png)
    print(report.render(doc))
    print(f"\nJSON: {args.out}")
    print(f"PNG:  {png}" if chart_error is None else f"PNG:  not drawn ({chart_error})")
    return 0 if doc["ok"] else 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> tuple[list[MixRun], dict[str, str]]:
    """Start the broker, measure every mix, stop the broker whatever happens."""
    from worker.dev.stack import start_broker, start_kafka

    contenders, skipped = available(args.contenders)
    for name, why in skipped.items():
        progress(f"{name}: {why}")
    with tempfile.TemporaryDirectory(prefix="optout-bench-peers-") as tmp:
        what = BROKERS[args.broker]
        progress(f"starting {what}; {args.messages:,} MOs per mix, {args.repeats} repeat(s)")
        broker: Any
        if args.broker == "kafka":
            broker = start_kafka(Path(tmp) / "kafka", config=BENCH_KAFKA_CONFIG)  # its log is in there
        else:
            broker = start_broker(log_path=args.broker_log)
        try:
            return [
                run_mix(args, MIXES[name], contenders, broker.bootstrap, broker.process.pid, Path(tmp))
                for name in args.mixes
            ], skipped
        finally:
            progress("stopping the broker")
            broker.stop()


def available(wanted: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The contenders that can run here, and why the others cannot."""
    skipped = {
        name: f"{module} not installed (pip install -e '.[bench]'): skipped"
        for name, module in PEERS.items()
        if name in wanted and importlib.util.find_spec(module) is None
    }
    return [name for name in wanted if name not in skipped], skipped


def run_mix(
    args: argparse.Namespace, mix: Mix, contenders: list[str], bootstrap: str, broker_pid: int, tmp: Path
) -> MixRun:
    suffix = f"{mix.name}.{uuid.uuid4().hex[:8]}"
    config = PhaseConfig(
        bootstrap=bootstrap,
        inbound=f"bench.mo.inbound.{suffix}",
        changes=f"bench.blocklist.changes.{suffix}",
        replies=f"bench.optout.replies.{suffix}",
        dead_letter=f"bench.mo.inbound.dlq.{suffix}",
        messages=args.messages,
        partitions=args.partitions,
        keyword_ratio=mix.keyword_ratio,
        bad_ratio=0.001,
        seed=args.seed,
        keyword_shares=mix.shares,
        accounts=args.accounts,
    )
    # One output topic per peer run, so each run's output can be counted exactly.
    peer_topics = {
        (name, rep): f"bench.peer.{name}.{rep}.{suffix}"
        for name in contenders
        if name in PEERS
        for rep in range(args.repeats)
    }
    # Each classifier run writes its own change and reply topics: a run reading the change topic
    # of an earlier one would know its blocks and confirm fewer opt-outs (one confirmation per
    # opt-out), so the runs' outputs would differ.
    own_topics = {
        (name, rep): (f"{config.changes}.{name}.{rep}", f"{config.replies}.{name}.{rep}")
        for name in contenders
        if name in CLASSIFIERS
        for rep in range(args.repeats)
    }
    asyncio.run(
        create_topics(
            config,
            extra=[*peer_topics.values(), *(replies for _, replies in own_topics.values())],
            compacted=[changes for changes, _ in own_topics.values()],
        )
    )
    progress(f"[{mix.name}] producing {args.messages:,} MOs ({mix.description})")
    produce = run_phase("produce", _write(config, tmp / f"{mix.name}.json"), args.phase_timeout)
    result = MixRun(mix, produce)
    if produce.error is not None:
        return result
    for rep in range(args.repeats):
        shift = rep % len(contenders)
        for name in contenders[shift:] + contenders[:shift]:
            run_config = replace(config, peer_output=peer_topics.get((name, rep), ""))
            if name in CLASSIFIERS:
                changes, replies = own_topics[(name, rep)]
                run_config = replace(run_config, changes=changes, replies=replies)
            load = os.getloadavg()[0]  # what else this shared machine was doing just before
            broker_before = cpu_seconds_of(broker_pid)
            if name == SCALE_OUT:
                folder = tmp / f"{mix.name}.{name}.{rep}"
                phase = run_scaled_out(run_config, folder, SCALE_OUT_PROCESSES, args.phase_timeout)
            else:
                path = _write(run_config, tmp / f"{mix.name}.{name}.{rep}.json")
                phase = run_phase(name, path, args.phase_timeout)
            phase.extra["load_average_1m_before"] = round(load, 2)
            result.broker_cpu.setdefault(name, []).append(cpu_seconds_of(broker_pid) - broker_before)
            result.runs.setdefault(name, []).append(phase)
            progress(f"[{mix.name}] {name} run {rep + 1}/{args.repeats}: {_summary(phase)}")
    count_outputs(result, config, peer_topics)
    return result


def run_scaled_out(config: PhaseConfig, folder: Path, processes: int, timeout: float) -> PhaseResult:
    """``processes`` classifier processes in one fresh consumer group, started together: the group
    shares the partitions out, each process classifies its own. One result for all of them
    (:func:`combine`)."""
    shared = replace(config, group_id=f"bench-scale-out-{uuid.uuid4().hex[:10]}")
    paths = []
    for index in range(processes):
        (folder / str(index)).mkdir(parents=True)
        paths.append(_write(shared, folder / str(index) / "config.json"))
    return combine(run_phases("classifier", paths, timeout), config.messages)


def combine(phases: Sequence[PhaseResult], messages: int) -> PhaseResult:
    """The processes of a scale-out run as one contender: records, CPU, batches and counters
    summed; the window from the first record any of them received to the last batch any of them
    finished (``time.monotonic()`` is the machine's clock, the same in every process); peak RSS
    the largest process's (each is a process of its own; the sum is in ``extra["peak_rss_mb"]``);
    ``extra["records_per_process"]`` how the group split the input."""
    combined = PhaseResult("classifier")
    errors = [p.error for p in phases if p.error is not None]
    windows = [p.window for p in phases if p.window]
    if windows:
        combined.window = [min(w[0] for w in windows), max(w[1] for w in windows)]
        combined.seconds = combined.window[1] - combined.window[0]
    combined.records = sum(p.records for p in phases)
    combined.batches = sum(p.batches for p in phases)
    combined.batch_seconds = [s for p in phases for s in p.batch_seconds]
    combined.cpu_seconds = sum(p.cpu_seconds for p in phases)
    combined.process_cpu_seconds = sum(p.process_cpu_seconds for p in phases)
    combined.peak_rss_kb = max((p.peak_rss_kb for p in phases), default=0)
    combined.start_rss_kb = max((p.start_rss_kb for p in phases), default=0)
    extra: dict[str, Any] = {}
    for phase in phases:
        for key, value in phase.extra.items():
            if isinstance(value, dict):
                totals = extra.setdefault(key, {})
                for name, count in value.items():
                    totals[name] = totals.get(name, 0) + count
            elif isinstance(value, int | float):
                extra[key] = extra.get(key, 0) + value
    extra["records_per_process"] = [p.records for p in phases]
    if len(windows) > 1:
        # How much later the last process got its first records than the first did: a pair
        # that started apart is timed over both windows and the gap (see the README, stop 27).
        extra["start_skew_s"] = round(max(w[0] for w in windows) - min(w[0] for w in windows), 3)
    extra["peak_rss_mb"] = round(sum(p.peak_rss_kb for p in phases) / 1024, 1)
    combined.extra = extra
    if errors:
        combined.error = "; ".join(errors)
    elif combined.records < messages:
        combined.error = f"the classifier processes stopped after {combined.records} of {messages} records"
    return combined


def _write(config: PhaseConfig, path: Path) -> Path:
    path.write_bytes(orjson.dumps(asdict(config)))
    return path


def _summary(phase: PhaseResult) -> str:
    if phase.error is not None:
        return f"FAILED: {phase.error}"
    summary = f"{phase.rate:,.0f} msgs/s, {phase.cpu_seconds:.2f} CPU-s in {phase.seconds:.2f} s"
    skew = phase.extra.get("start_skew_s")
    if skew is not None and skew >= START_SKEW_NOTED_S:
        summary += f" (its processes started {skew:.2f} s apart: the pair's window includes the gap)"
    idle = sum(1 for records in phase.extra.get("records_per_process", ()) if records == 0)
    if idle:
        # Not a pair's speed: one process took every partition (see BENCH_KAFKA_CONFIG).
        summary += f" ({idle} of its processes got no records: this is the others' work alone)"
    return summary


def count_outputs(result: MixRun, config: PhaseConfig, peer_topics: dict[tuple[str, int], str]) -> None:
    """Fill ``result.outputs`` and ``result.checks``: what each run wrote against what it should."""
    produce = result.produce
    expected_peer = sum(
        count for action, count in produce.extra["peer_expected"].items() if action not in ("none", "skipped")
    )
    topics = {f"{name}.{rep}": topic for (name, rep), topic in peer_topics.items()}
    counted = asyncio.run(count_topics(config.bootstrap, config.partitions, topics)) if topics else {}
    for name, phases in result.runs.items():
        for rep, phase in enumerate(phases):
            if name in PEERS:
                got = counted.get(f"{name}.{rep}", 0)
                result.outputs.setdefault(name, []).append(got)
                what = f"{name} run {rep + 1}: output records"
                result.checks.append({"what": what, "expected": expected_peer, "got": got})
            elif name in CLASSIFIERS:
                extra = phase.extra
                written = extra.get("changes", 0) + extra.get("replies", 0) + extra.get("dead_lettered", 0)
                result.outputs.setdefault(name, []).append(written)
                for check in consistency_checks({"produce": produce, "classifier": phase}, {}):
                    check["what"] = f"{name} run {rep + 1}: {check['what']}"
                    result.checks.append(check)
            if phase.error is None and name not in CLASSIFIERS:  # consistency_checks counted its records
                result.checks.append(
                    {
                        "what": f"{name} run {rep + 1}: records",
                        "expected": config.messages,
                        "got": phase.records,
                    }
                )
    for check in result.checks:
        check.setdefault("ok", check["got"] == check["expected"])


def cpu_seconds_of(pid: int) -> float:
    """A process's (the broker's) user + system CPU so far, from /proc (0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
