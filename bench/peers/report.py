"""The peer benchmark's report: per mix and contender, the medians over repeats, as JSON and a table.

Medians, not means or bests: the machine is shared and the broker runs on it, so one run can
be slowed by a neighbour; the median of a few runs shrugs that off without cherry-picking the
luckiest. Every run's own figures stay in the JSON (``runs``).

CPU-seconds per million MOs is the contender's process CPU (all its threads) inside its measured
window, divided by the MOs in it: the number that says how many cores a given MO rate needs,
whatever the box. The broker's CPU is not in it (it is in the JSON, per run, as ``broker_cpu_s``,
over the whole phase including the group join).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import time
from typing import Any

from bench.classifier import machine_info
from bench.peers.compare import SCALE_OUT, MixRun
from bench.phases import PhaseResult
from bench.workload import ACCOUNTS

REFERENCES = ("ceiling", "quix", "faust")
LABELS = {
    "ceiling": "ceiling (aiokafka + orjson)",
    "classifier": "optout classifier",
    "quix": "Quix Streams app",
    "faust": "faust-streaming agent",
    SCALE_OUT: "optout classifier x2",
}
VERSIONS = ("quixstreams", "confluent-kafka", "faust-streaming", "mode-streaming", "aiokafka", "orjson")


def build(
    args: argparse.Namespace, mix_runs: list[MixRun], skipped: dict[str, str], started: float
) -> dict[str, Any]:
    """The JSON document: settings, conditions, versions, and per mix the summary and every run."""
    mixes = [_mix(run) for run in mix_runs]
    failed = [f"{m['name']}/{name}" for m in mixes for name, c in m["contenders"].items() if c["errors"]]
    bad_checks = [c for m in mixes for c in m["checks"] if not c["ok"]]
    produce_failed = [m["name"] for m in mixes if m["produce_error"]]
    versions: dict[str, str | None] = {dist: _version(dist) for dist in VERSIONS}
    versions["librdkafka"] = next(
        (
            r.extra.get("librdkafka")
            for run in mix_runs
            for r in run.runs.get("quix", [])
            if r.extra.get("librdkafka")
        ),
        None,
    )
    return {
        "benchmark": "bench.peers (issue 16)",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "messages_per_mix": args.messages,
        "accounts": args.accounts,
        "partitions": args.partitions,
        "repeats": args.repeats,
        "seed": args.seed,
        "quick": args.quick,
        "skipped": skipped,
        "machine": _machine(args),
        "versions": versions,
        "mixes": mixes,
        "failed": failed + [f"{name}/produce" for name in produce_failed],
        "ok": not failed and not bad_checks and not produce_failed,
    }


def _mix(run: MixRun) -> dict[str, Any]:
    produce = run.produce
    contenders = {
        name: _contender(phases, run.outputs.get(name, []), run.broker_cpu.get(name, []))
        for name, phases in run.runs.items()
    }
    for summary in contenders.values():
        rate = summary["msgs_per_s"]
        summary["vs"] = {
            ref: _ratio(rate, contenders[ref]["msgs_per_s"]) for ref in REFERENCES if ref in contenders
        }
    return {
        "name": run.mix.name,
        "title": run.mix.title,
        "description": run.mix.description,
        "keyword_ratio": run.mix.keyword_ratio,
        "shares": run.mix.shares,
        "produce_error": produce.error,
        "produced_msgs_per_s": round(produce.rate),
        "expected": produce.extra.get("expected", {}),
        "peer_expected": produce.extra.get("peer_expected", {}),
        "contenders": contenders,
        "checks": run.checks,
    }


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    if getattr(args, "broker", "tansu") == "kafka":
        from worker.dev.kafka_broker import kafka_version

        machine["broker"] = f"Apache Kafka {kafka_version()} (one KRaft process), same machine"
    return machine


def _contender(phases: list[PhaseResult], outputs: list[int], broker_cpu: list[float]) -> dict[str, Any]:
    done = [p for p in phases if p.error is None and p.seconds > 0 and p.records > 0]
    rates = [p.rate for p in done]
    cpu_per_million = [p.cpu_seconds / p.records * 1e6 for p in done]
    return {
        "msgs_per_s": round(statistics.median(rates)) if rates else None,
        "cpu_s_per_million": round(statistics.median(cpu_per_million), 2) if done else None,
        "peak_rss_mb": round(max(p.peak_rss_kb for p in phases) / 1024, 1) if phases else None,
        "outputs_per_run": round(statistics.median(outputs)) if outputs else None,
        "errors": [p.error for p in phases if p.error is not None],
        "runs": [
            {
                "msgs_per_s": round(p.rate),
                "records": p.records,
                "seconds": round(p.seconds, 3),
                "cpu_s": round(p.cpu_seconds, 3),
                "process_cpu_s": round(p.process_cpu_seconds, 3),
                "peak_rss_mb": round(p.peak_rss_kb / 1024, 1),
                "start_rss_mb": round(p.start_rss_kb / 1024, 1),
                "broker_cpu_s": round(broker_cpu[i], 3) if i < len(broker_cpu) else None,
                "load_average_1m_before": p.extra.get("load_average_1m_before"),
                "error": p.error,
                **{k: v for k, v in p.extra.items() if k not in ("expected", "peer_expected")},
            }
            for i, p in enumerate(phases)
        ],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- the table ------------------------------------------------------------------------------------


def render(doc: dict[str, Any]) -> str:
    m, v = doc["machine"], doc["versions"]
    lines = [
        f"optout-worker peer benchmark: {doc['messages_per_mix']:,} MOs per mix, "
        f"{doc['partitions']} partitions, {doc.get('accounts', ACCOUNTS)} accounts, "
        f"{doc['repeats']} run(s) per contender and mix "
        f"(medians shown), {doc['duration_s']:.0f} s",
        f"  machine   nproc {m['nproc']}, {m['cpu']}, {m['python']}, {m['platform']}",
        f"  broker    {m['broker']}; load average at the end {m['load_average']}",
        f"  versions  quixstreams {v['quixstreams']} (librdkafka {v['librdkafka']}), "
        f"faust-streaming {v['faust-streaming']}, aiokafka {v['aiokafka']}, orjson {v['orjson']}",
    ]
    lines += [f"  skipped   {name}: {why}" for name, why in doc["skipped"].items()]
    for mix in doc["mixes"]:
        lines += ["", *_mix_lines(mix)]
    lines += [
        "",
        "  msgs/s: MOs / (last MO done - first MO received), median over runs; group join excluded. Done:",
        "    ceiling decoded; classifier: outputs acked and offsets committed; peers: output handed to",
        "    the producer (their flush and 1 s commit come after, which flatters them slightly).",
        "  xREF: this contender's msgs/s over REF's. CPU-s/M: the contender's process CPU (all threads)",
        "    in that window per million MOs. peak RSS: of the process. outputs: records written per run",
        "    (classifier: changes + replies + dead letters; a START lifts up to six blocks).",
        "  Peers match whole messages only (STOP, START, HELP...; not 'Stop!' or 'ＳＴＯＰ').",
        "  classifier x2: two classifier processes in one consumer group, sharing the partitions; CPU",
        "    summed, the window from the first MO either received to the last batch either finished,",
        "    peak RSS of the larger (records_per_process in the JSON: how the group split the input).",
    ]
    checks = [c for mix in doc["mixes"] for c in mix["checks"]]
    bad = [c for c in checks if not c["ok"]]
    lines.append(f"  checks: {'all OK' if not bad else 'MISMATCH'} ({len(checks)} checked)")
    lines += [f"    MISMATCH {c['what']}: expected {c['expected']:,}, got {c['got']:,}" for c in bad]
    lines += [f"  FAILED {name}" for name in doc["failed"]]
    return "\n".join(lines)


def _mix_lines(mix: dict[str, Any]) -> list[str]:
    expected, peer = mix["expected"], mix["peer_expected"]
    keywords = sum(expected.get(k, 0) for k in ("opt_out", "opt_in", "help"))
    peer_hits = sum(peer.get(k, 0) for k in ("opt_out", "opt_in", "help"))
    lines = [
        f"{mix['title']}: {mix['description']}",
        f"  {keywords:,} keyword MOs by the labels; the peers' exact match catches {peer_hits:,} of them",
    ]
    if mix["produce_error"]:
        return [*lines, f"  producing FAILED: {mix['produce_error']}"]
    refs = [ref for ref in REFERENCES if ref in mix["contenders"]]
    head = "".join(f"{'x' + ref:>9}" for ref in refs)
    lines.append(
        f"  {'contender':<28}{'msgs/s':>9}  {'(runs)':<17}{head}{'CPU-s/M':>9}{'peak RSS':>10}{'outputs':>9}"
    )
    for name, c in mix["contenders"].items():
        label = LABELS.get(name, name)
        if c["msgs_per_s"] is None:
            lines.append(f"  {label:<28}FAILED: {'; '.join(c['errors'])}")
            continue
        runs = [r["msgs_per_s"] for r in c["runs"] if r["error"] is None]
        spread = f"({min(runs) / 1000:,.1f}k-{max(runs) / 1000:,.1f}k)" if len(runs) > 1 else ""
        ratios = "".join(f"{c['vs'].get(ref) or 0:>9.2f}" for ref in refs)
        outputs = f"{c['outputs_per_run']:,}" if c["outputs_per_run"] is not None else "-"
        lines.append(
            f"  {label:<28}{c['msgs_per_s']:>9,}  {spread:<17}{ratios}"
            f"{c['cpu_s_per_million']:>9.1f}{c['peak_rss_mb']:>7.0f} MB{outputs:>9}"
        )
    return lines
