"""Load figure of the HTTP API's ``GET /v1/check``: requests per second and latency percentiles.

``python -m bench.api_load [--blocks N] [--concurrency C] [--seconds S] [--json]``

1. Starts its own Tansu broker and embedded Postgres (fresh database), migrates it, creates the
   topics, stores ``--blocks`` active blocks of the account (half the checked addresses are
   blocked), and makes a token.
2. Runs ``optout api`` as a real child process (uvicorn, one worker process; rate limit raised
   out of the way).
3. ``--concurrency`` httpx clients (keep-alive connections) in this process send ``GET /v1/check``
   back to back for ``--seconds``, after a warm-up; each latency runs from the call to the parsed
   response. Client and server share the machine, so the figure is a floor for the server alone.

Reports requests/s and p50/p90/p99/max; never asserts (README: HTTP API).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.classifier import percentile_ms
from bench.propagation import _spawn

ACCOUNT = "acct-load"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000, help="active blocks stored first")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    print(orjson.dumps(report).decode() if args.json else render(report))
    return 0


async def _seed(database: str, blocks: int) -> str:
    from worker.api.tokens import new_token, secret_hash
    from worker.classify.manual import manual_change, manual_event
    from worker.store.postgres import Store
    from worker.store.tokens import TokenStore

    events = []
    for i in range(blocks):
        fields = {"address": f"+1555{2 * i:07d}", "account": ACCOUNT, "channel": "sms", "note": "seed"}
        events.append(manual_event(manual_change(fields), "2026-12-01T00:00:00.000000Z")[1])
    async with await Store.connect(database) as store:
        for start in range(0, len(events), 5000):
            await store.apply("bench", events[start : start + 5000], {})
        token = new_token()
        await TokenStore(store).create(token.token_id, ACCOUNT, secret_hash(token.secret), "load")
    return str(token)


async def _load(
    base: str, token: str, args: argparse.Namespace, blocks: int
) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = 0.0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)

    async def worker(client: httpx.AsyncClient, seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            # Even numbers were blocked: half the checks find a block.
            address = f"+1555{rng.randrange(2 * max(blocks, 1)):07d}"
            params = {"address": address, "channel": "sms"}
            started = time.perf_counter()
            response = await client.get("/v1/check", params=params, headers=headers)
            response.json()
            if measuring:
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        stop_at = time.perf_counter() + args.warmup
        await asyncio.gather(*(worker(client, i) for i in range(args.concurrency)))
        measuring = True
        started = time.perf_counter()
        stop_at = started + args.seconds
        await asyncio.gather(*(worker(client, 1000 + i) for i in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from worker.config import Settings
    from worker.dev.stack import postgres_url_for, start_broker, with_database
    from worker.store.migrate import migrate
    from worker.stream.kafka import ensure_topics

    with (
        tempfile.TemporaryDirectory(prefix="optout-bench-api-") as tmp,
        postgres_url_for(Path(tmp) / "pg") as server,
    ):
        work = Path(tmp)
        broker = start_broker(log_path=work / "tansu.log")
        name = f"optout_api_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        database = with_database(server, name)
        await migrate(database)
        env = {
            "OPTOUT_KAFKA_BOOTSTRAP": broker.bootstrap,
            "OPTOUT_DATABASE_URL": database,
            "OPTOUT_PARTITIONS": "4",
            "OPTOUT_API_HOST": "127.0.0.1",
            "OPTOUT_API_PORT": "0",
            "OPTOUT_API_RATE": "1000000",
            "OPTOUT_API_BURST": "1000000",
            "OPTOUT_LOG_LEVEL": "INFO",
        }
        await ensure_topics(Settings.from_mapping(env))
        token = await _seed(database, args.blocks)
        log = work / "api.log"
        api = _spawn(["-m", "worker", "api"], env, log)
        try:
            base = None
            deadline = time.monotonic() + 60
            while base is None and time.monotonic() < deadline and api.poll() is None:
                found = re.search(rb"API on (http://[\d.:]+)", log.read_bytes())
                base = found.group(1).decode() if found else None
                await asyncio.sleep(0.1)
            if base is None:
                raise SystemExit(f"optout api did not start: {log.read_text()[-2000:]}")
            cpu_before = _cpu_seconds(api.pid)
            latencies, errors, elapsed = await _load(base, token, args, args.blocks)
            server_cpu = _cpu_seconds(api.pid) - cpu_before
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=60)
            broker.stop()
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed),
        "concurrency": args.concurrency,
        "blocks": args.blocks,
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(len(latencies), 1), 2),
        "p50_ms": percentile_ms(latencies, 50),
        "p90_ms": percentile_ms(latencies, 90),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), warm-up included in neither figure."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def render(report: dict[str, Any]) -> str:
    return (
        f"GET /v1/check, {report['concurrency']} in flight, {report['blocks']:,} blocks stored: "
        f"{report['requests_per_s']:,} requests/s ({report['requests']:,} in {report['seconds']} s, "
        f"{report['errors']} errors; server CPU {report['server_cpu_ms_per_request']} ms a request)\n"
        f"  p50 {report['p50_ms']} ms   p90 {report['p90_ms']} ms   p99 {report['p99_ms']} ms   "
        f"max {report['max_ms']} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
