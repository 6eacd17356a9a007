"""Snapshot scale benchmark: write, load and query a snapshot of N active blocks (default 10M).

``python -m bench.snapshot [--blocks N] [--unblocked U] [--json]`` (``make bench-snapshot``).

1. Starts its own embedded Postgres in a temporary directory (or uses ``OPTOUT_DATABASE_URL``'s
   server with a fresh database) and fills ``blocklist_state`` server-side with ``generate_series``:
   N active blocks over 200 accounts (90% account-level, 5% subaccount, 5% sender; 10% on every
   channel; one address in ten blocked by two accounts) and U unblocked identities.
2. ``write``: :func:`worker.snapshot.writer.write_snapshot`, timed (the projector's code path).
3. ``load``: a fresh child process runs :func:`worker.sender.view.load_latest` (checksum verification
   included) and reports the wall time and its peak resident memory, then times ``is_blocked`` on
   one core over a mix of blocked and unblocked addresses.

Reports, never asserts. Targets (issue 3): write <= 60 s, load <= 60 s, view RSS <= 1.5 GB,
>= 1M checks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson

_FILL = """
INSERT INTO blocklist_state (address, account_id, level, subaccount_id, sender, channel, action,
    action_rank, occurred_at, event_id, keyword, rule, reason, source_topic, source_partition,
    source_offset, source_message_id)
SELECT '+1' || (2000000000 + ((CASE WHEN i % 10 = 5 THEN i - 1 ELSE i END) * 7919) % 7000000000)::text,
       'acct-' || (i % 200),
       CASE i % 20 WHEN 0 THEN 'subaccount' WHEN 1 THEN 'sender' ELSE 'account' END,
       CASE i % 20 WHEN 0 THEN 'sub-' || (i % 7) ELSE '' END,
       CASE i % 20 WHEN 1 THEN 'S' || (i % 50) ELSE '' END,
       CASE i % 10 WHEN 3 THEN '*' ELSE 'sms' END,
       CASE WHEN i <= $1::bigint THEN 'block' ELSE 'unblock' END,
       CASE WHEN i <= $1::bigint THEN 1 ELSE 0 END,
       timestamptz '2026-11-24 00:00:00+00' - make_interval(secs => i),
       md5(i::text), 'STOP', 'stop', 'opt_out_keyword', 'blocklist.changes', i % 6, i, 'm' || i
FROM generate_series(1::bigint, $1::bigint + $2::bigint) AS i
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10_000_000, help="active blocks (default 10M)")
    parser.add_argument("--unblocked", type=int, default=500_000, help="unblocked identities (default 500k)")
    parser.add_argument("--checks", type=int, default=2_000_000, help="is_blocked calls to time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--load", metavar="DIR", help=argparse.SUPPRESS)  # the child process's phase
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        print(orjson.dumps(load_phase(Path(args.load), args.checks)).decode())
        return 0
    report = asyncio.run(run(args))
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(report))
    return 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from worker.dev.stack import postgres_url_for, with_database
    from worker.snapshot.writer import terminal_progress, write_snapshot
    from worker.store.migrate import migrate

    with (
        tempfile.TemporaryDirectory(prefix="optout-bench-snapshot-") as tmp,
        postgres_url_for(Path(tmp) / "pg") as server,  # stopped before tmp is removed
    ):
        work = Path(tmp)
        name = f"optout_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(server)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server, name)
        try:
            await migrate(url)
            conn = await asyncpg.connect(url)
            try:
                _say(f"filling blocklist_state: {args.blocks:,} blocks + {args.unblocked:,} unblocked ...")
                started = time.monotonic()
                await conn.execute("SET synchronous_commit = off")
                await conn.execute(_FILL, args.blocks, args.unblocked, timeout=3600)
                await conn.execute("VACUUM ANALYZE blocklist_state")
                fill_s = time.monotonic() - started
                _say(f"filled in {fill_s:.0f} s; writing the snapshot ...")
                directory = work / "snapshots"
                result = await write_snapshot(
                    conn,
                    directory,
                    topic="blocklist.changes",
                    consumer_group="optout-projector",
                    keep=2,
                    progress=terminal_progress(),
                )
            finally:
                await conn.close()
            manifest = result.manifest
            _say(f"written in {result.seconds:.1f} s; loading it in a fresh process ...")
            child = subprocess.run(  # noqa: ASYNC221 - nothing else runs on this loop meanwhile
                [
                    sys.executable,
                    "-m",
                    "bench.snapshot",
                    "--load",
                    str(directory),
                    "--checks",
                    str(args.checks),
                ],
                check=True,
                capture_output=True,
            )
            loaded = orjson.loads(child.stdout.splitlines()[-1])
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return {
        "blocks": manifest.count,
        "unblocked": manifest.unblocked.count,
        "fill_seconds": round(fill_s, 1),
        "write_seconds": round(result.seconds, 1),
        "snapshot_mb": round((manifest.active.bytes + manifest.unblocked.bytes) / 1e6, 1),
        **loaded,
    }


def load_phase(directory: Path, checks: int) -> dict[str, Any]:
    from worker.sender.view import load_latest

    started = time.monotonic()
    index, manifest = load_latest(directory, "blocklist.changes")
    load_s = time.monotonic() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert manifest is not None
    assert index.blocks == manifest.count
    # Two mixes: "typical" (2% of the addresses asked about are blocked, as for a campaign to an
    # opted-in list) and "adversarial" (50%: every other check walks the whole hit path).
    rng = random.Random(1)
    blocked = [
        (b.address, b.account_id, None, None, "sms")
        for b in itertools.islice(index.active_blocks(), 0, checks * 4, 4)
    ][: checks // 2]
    unknown = [(f"+4{rng.randrange(10**11):011d}", "acct-1", None, "S1", "sms") for _ in range(checks)]
    typical = blocked[: checks // 50] + unknown[: checks - checks // 50]
    adversarial = blocked + unknown[: checks - len(blocked)]
    result: dict[str, Any] = {"load_seconds": round(load_s, 1), "view_peak_rss_mb": round(rss_mb)}
    for name, queries in (("typical", typical), ("adversarial", adversarial)):
        rng.shuffle(queries)
        rate, hits = _time_checks(index.is_blocked, queries)
        result[f"checks_per_second_{name}"] = round(rate)
        result[f"ns_per_check_{name}"] = round(1e9 / rate)
        result[f"checks_blocked_{name}"] = f"{hits:,} of {len(queries):,}"
    return result


def _time_checks(
    is_blocked: Any, queries: Sequence[tuple[str, str, None, str | None, str]]
) -> tuple[float, int]:
    gc_was = _gc_off()
    started = time.perf_counter()
    hits = 0
    for address, account, subaccount, sender, channel in queries:
        if is_blocked(address, account, subaccount, sender, channel):
            hits += 1
    seconds = time.perf_counter() - started
    _gc_on(gc_was)
    return len(queries) / seconds, hits


def _gc_off() -> bool:
    import gc

    was = gc.isenabled()
    gc.disable()
    return was


def _gc_on(was: bool) -> None:
    import gc

    if was:
        gc.enable()


def _say(message: str) -> None:
    print(f"[bench.snapshot] {message}", file=sys.stderr, flush=True)


def render(report: dict[str, Any]) -> str:
    lines = [
        f"snapshot of {report['blocks']:,} active blocks + {report['unblocked']:,} unblocked "
        f"({report['snapshot_mb']} MB gzip)",
        f"  write (COPY, gzip, fsync, rename) : {report['write_seconds']} s   (target <= 60 s)",
        f"  load + verify in a fresh process  : {report['load_seconds']} s   (target <= 60 s)",
        f"  view peak RSS                     : {report['view_peak_rss_mb']} MB   (target <= 1536 MB)",
    ]
    lines.extend(
        f"  is_blocked, one core, {name:<11} : {report[f'checks_per_second_{name}']:,}/s "
        f"({report[f'ns_per_check_{name}']} ns; {report[f'checks_blocked_{name}']} blocked)"
        "   (target >= 1,000,000/s)"
        for name in ("typical", "adversarial")
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
