"""Propagation benchmark: how long until a STOP sent to the inbound topic is seen by a live
:class:`worker.sender.view.BlocklistView`, with the classifier and projector under load.

``python -m bench.propagation [--rate R] [--probes N] [--json]`` (``make bench-propagation``).

1. Starts its own Tansu broker and embedded Postgres (or ``OPTOUT_DATABASE_URL``'s server, fresh
   database), creates the topics, and runs ``optout classifier`` and ``optout projector`` as
   real child processes, as in production.
2. A load generator (another child process) produces realistic MOs (:mod:`bench.workload`, 3%
   keywords) at ``--rate`` messages per second for the whole run.
3. This process opens a ``BlocklistView`` (no snapshot: it replays, then tails the change topic)
   and sends ``--probes`` STOPs from fresh addresses, one every 50 ms. Each probe's time runs
   from just before the produce call to the first ``is_blocked`` that answers True (polled every
   millisecond), so it covers the inbound produce, the classifier's batch, the change-topic
   produce and the view's fetch.

Reports p50/p90/p99/max and the load actually delivered; never asserts. Target (issue 3):
p99 <= 1 s (the seed platforms sync hourly).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.classifier import percentile_ms


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=20_000, help="background MOs per second (default 20k)")
    parser.add_argument("--probes", type=int, default=300, help="STOP probes to time (default 300)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--load-gen", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "RATE"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_gen:
        bootstrap, topic, rate = args.load_gen
        asyncio.run(load_generator(bootstrap, topic, int(rate)))
        return 0
    report = asyncio.run(run(args))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else render(report))
    return 0


async def load_generator(bootstrap: str, topic: str, rate: int) -> None:
    """Produce at ``rate`` msgs/s until SIGTERM; print how many were sent."""
    from aiokafka import AIOKafkaProducer

    from bench.workload import Workload, generate

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    records = [(r.key, r.value) for r in generate(Workload(messages=200_000, bad_ratio=0.0))]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate) - sent
            if due <= 0:
                await asyncio.sleep(0.005)
                continue
            batch = min(due, 2000)
            futures = [
                await producer.send(
                    topic, records[(sent + i) % len(records)][1], key=records[(sent + i) % len(records)][0]
                )
                for i in range(batch)
            ]
            await asyncio.gather(*futures)
            sent += batch
    finally:
        await producer.stop()
        print(orjson.dumps({"sent": sent, "seconds": time.monotonic() - started}).decode(), flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    from worker.config import Settings
    from worker.dev.stack import postgres_url_for, start_broker, with_database
    from worker.sender.view import BlocklistView
    from worker.stream.kafka import ensure_topics

    with (
        tempfile.TemporaryDirectory(prefix="optout-bench-propagation-") as tmp,
        postgres_url_for(Path(tmp) / "pg") as server,  # stopped before tmp is removed
    ):
        work = Path(tmp)
        broker = start_broker(log_path=work / "tansu.log")
        database = with_database(server, f"optout_prop_{uuid.uuid4().hex[:8]}")
        await _create_database(server, database)
        env = {
            "OPTOUT_KAFKA_BOOTSTRAP": broker.bootstrap,
            "OPTOUT_DATABASE_URL": database,
            "OPTOUT_METRICS_PORT": "0",
            "OPTOUT_PARTITIONS": "4",
            "OPTOUT_SNAPSHOT_DIR": str(work / "snapshots"),
            "OPTOUT_LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_mapping(env)
        await ensure_topics(settings)
        children = [
            _spawn(["-m", "worker", command], env, work / f"{command}.log")
            for command in ("classifier", "projector")
        ]
        loader = _spawn(
            [
                "-m",
                "bench.propagation",
                "--load-gen",
                broker.bootstrap,
                settings.topic_inbound,
                str(args.rate),
            ],
            env,
            None,
        )
        view = None
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
        try:
            await producer.start()
            view = await BlocklistView.open(broker.bootstrap, topic=settings.topic_changes, snapshot_dir=None)
            _say(f"warming up for 5 s under {args.rate:,} msgs/s ...")
            await asyncio.sleep(5)
            latencies = []
            timeouts = 0
            for i in range(args.probes):
                address = f"+1999{i:07d}"
                doc = {
                    "message_id": f"probe-{i}",
                    "channel": "sms",
                    "from": address,
                    "to": "12345",
                    "account_id": "acct-probe",
                    "text": "STOP",
                    "received_at": _now(),
                }
                started = time.perf_counter()
                await producer.send_and_wait(settings.topic_inbound, orjson.dumps(doc), key=address.encode())
                while not view.is_blocked(address, "acct-probe", None, "12345", "sms"):
                    if time.perf_counter() - started > 10:
                        timeouts += 1
                        break
                    await asyncio.sleep(0.001)
                else:
                    latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)
            lag = view.lag()
        finally:
            if view is not None:
                await view.close()
            await producer.stop()
            loader.send_signal(signal.SIGTERM)
            loaded = orjson.loads((loader.communicate(timeout=30)[0] or b"{}").splitlines()[-1] or b"{}")
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait(timeout=60)
            broker.stop()
    latencies.sort()
    return {
        "probes": args.probes,
        "timeouts": timeouts,
        "p50_ms": percentile_ms(latencies, 50),
        "p90_ms": percentile_ms(latencies, 90),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "load_target_per_s": args.rate,
        "load_delivered_per_s": round(loaded.get("sent", 0) / loaded["seconds"])
        if loaded.get("seconds")
        else None,
        "view_blocks": lag.blocks,
        "view_applied": lag.applied,
    }


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


async def _create_database(server: str, url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def _spawn(args: list[str], env: dict[str, str], log: Path | None) -> subprocess.Popen[bytes]:
    out = log.open("ab") if log is not None else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, *args],
        env=os.environ | env,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _say(message: str) -> None:
    print(f"[bench.propagation] {message}", file=sys.stderr, flush=True)


def render(report: dict[str, Any]) -> str:
    return (
        f"STOP -> BlocklistView, {report['probes']} probes under {report['load_delivered_per_s']:,} msgs/s "
        f"(target {report['load_target_per_s']:,}):\n"
        f"  p50 {report['p50_ms']} ms   p90 {report['p90_ms']} ms   p99 {report['p99_ms']} ms   "
        f"max {report['max_ms']} ms   timeouts {report['timeouts']}   (target p99 <= 1000 ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
