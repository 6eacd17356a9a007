"""``make chaos``: the long fault run on one broker; prints the table, writes JSON.

python -m tests.chaos [--broker tansu|kafka] [--mos 200000] [--kills 10] [--out FILE] [--quick]

The broker is started here, behind a fault proxy (:mod:`tests.chaos.brokers`), so the run also
injects network faults between the workers and the broker, and on Apache Kafka broker restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import orjson

from tests.chaos.brokers import BROKER_KINDS, chaos_broker
from tests.chaos.run import ChaosConfig, RunResult, run_chaos, table
from tests.integration.helpers import create_topics


async def _run(kind: str, work: Path, config: ChaosConfig) -> RunResult:
    async with chaos_broker(kind, work) as broker:
        topics = await create_topics(broker.bootstrap)
        return await run_chaos(broker, topics, work, config)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=BROKER_KINDS, default="tansu")
    parser.add_argument("--mos", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=4_000.0)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of each worker kind")
    parser.add_argument("--rebalances", type=int, default=10)
    parser.add_argument("--pg-stop-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="20,000 MOs, 3 kills each: a few minutes")
    parser.add_argument("--out", type=Path, default=Path(".optout/chaos/latest.json"))
    args = parser.parse_args()
    if args.quick:
        config = ChaosConfig(
            mos=20_000, rate=4_000, kills=3, rebalances=2, pg_stop_seconds=5, broker_restarts=1
        )
    else:
        config = ChaosConfig(
            mos=args.mos, rate=args.rate, kills=args.kills, rebalances=args.rebalances,
            pg_stop_seconds=args.pg_stop_seconds, freezes=2, pg_restarts=2, pg_connection_kills=3, pg_slow=2,
            net_faults=2, half_open_seconds=70, broker_net_faults=2, broker_half_open_seconds=20,
            broker_restarts=3,
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="optout-chaos-") as work:
        result = asyncio.run(_run(args.broker, Path(work), config))
    print(table(result))
    print(
        f"\n{result.mos_in} MOs ({result.bad_in} malformed), {result.expected_events} change events "
        f"expected, {result.in_postgres} in Postgres, lost {result.lost}, unexpected {result.unexpected}, "
        f"state equal: {result.state_equal}, {result.input_duplicated} MOs on the input twice, "
        f"{result.replies_duplicated} reply ids twice ({result.replies_beyond_input} beyond the input's "
        f"copies), exit codes {result.exit_codes}, "
        f"peak RSS MB {result.peak_rss_mb}, {result.seconds} s: {'PASS' if result.passed else 'FAIL'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2))
    print(f"written: {args.out}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
