"""Micro-benchmark of the classification function: nanoseconds per message, no Kafka.

``python -m bench.classify [--messages N] [--rounds R] [--json]`` (or ``make bench-classify``).

The texts are the inbound texts of :mod:`bench.workload` (the stream ``make bench`` produces:
chat of 2-160 characters in several scripts with emoji and near misses, 3% keyword MOs in the
forms subscribers type, phrased requests), classified against the default rule set (every
language pack). Each message is timed on its own with ``time.perf_counter_ns`` around one
:func:`worker.classify.decide.classify` call, ``rounds`` times over the whole list; the report gives the
median and p99 of those per-call times, per kind of message and overall, and the mean from one
untimed pass (which excludes the timer's own overhead, also reported).

It reports and never asserts: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time

import orjson

from bench.classifier import percentile
from bench.workload import Expect, Workload, generate
from worker.classify.decide import classify
from worker.classify.rules import default_rulebook


def _texts(messages: int) -> list[tuple[str, str]]:
    """(text, expected intent) of the workload's decodable records."""
    out = []
    for record in generate(Workload(messages=messages)):
        if record.expect is Expect.DEAD_LETTER:
            continue
        out.append((orjson.loads(record.value)["text"], record.expect.value))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classify", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args(argv)

    rules = default_rulebook().base
    texts = _texts(args.messages)
    for text, _ in texts:  # warm up: first-call costs (regex compile, caches) are not per message
        classify(text, rules)
    timer = statistics.median([-(time.perf_counter_ns() - time.perf_counter_ns()) for _ in range(10_000)])

    gc.disable()
    try:
        per_kind: dict[str, list[int]] = {}
        everything: list[int] = []
        wrong = 0
        clock = time.perf_counter_ns
        for _ in range(args.rounds):
            for text, expect in texts:
                start = clock()
                match = classify(text, rules)
                elapsed = clock() - start
                everything.append(elapsed)
                kind = "chat" if expect == "none" else "keyword"
                per_kind.setdefault(kind, []).append(elapsed)
                got = "none" if match is None else match.rule.intent.value
                wrong += got != expect
        start = clock()
        for text, _ in texts:
            classify(text, rules)
        mean_untimed = (clock() - start) / len(texts)
    finally:
        gc.enable()

    report: dict[str, object] = {
        "messages": len(texts),
        "rounds": args.rounds,
        "python": platform.python_version(),
        "timer_overhead_ns": timer,
        "mean_ns_untimed": round(mean_untimed),
        "disagreements_with_labels": wrong // args.rounds,
    }
    for kind, values in [("all", everything), *sorted(per_kind.items())]:
        values.sort()
        report[kind] = {
            "median_ns": percentile(values, 50),
            "p90_ns": percentile(values, 90),
            "p99_ns": percentile(values, 99),
            "count": len(values),
        }
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
        return 0
    print(
        f"classify(): {len(texts)} workload texts x {args.rounds} rounds, Python {platform.python_version()}"
    )
    print(f"{'kind':<8} {'median':>9} {'p90':>9} {'p99':>9} {'count':>9}")
    for kind in ("all", *sorted(per_kind)):
        row = report[kind]
        assert isinstance(row, dict)
        print(
            f"{kind:<8} {row['median_ns'] / 1000:>7.2f}µs {row['p90_ns'] / 1000:>7.2f}µs "
            f"{row['p99_ns'] / 1000:>7.2f}µs {row['count']:>9}"
        )
    print(
        f"mean without per-call timing: {mean_untimed / 1000:.2f} µs; "
        f"timer overhead ~{timer:.0f} ns (included above)"
    )
    print(f"labels the classifier disagrees with: {wrong // args.rounds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
