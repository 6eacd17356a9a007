"""Webhook dispatcher throughput: signed deliveries per second to one local endpoint.

``python -m bench.webhooks [--changes N] [--addresses A] [--delay-ms D] [--concurrency C] [--json]``

1. Starts its own Tansu broker and embedded Postgres, creates the topics, adds one endpoint.
2. A receiver (a child process: an asyncio HTTP/1.1 server on 127.0.0.1) answers 200 to every
   request after ``--delay-ms`` (a receiver's own work), and counts them.
3. ``--changes`` change events over ``--addresses`` subscribers go to the change topic, then the
   dispatcher runs in this process with ``--burst`` until it has sent them all.

Reports deliveries per second from the dispatcher's first batch to its last commit. One endpoint
is the worst case for concurrency (a single account's changes); never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20_000, help="change events (default 20000)")
    parser.add_argument("--addresses", type=int, default=5_000, help="subscribers (default 5000)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="receiver's time per request (default 0)")
    parser.add_argument("--concurrency", type=int, default=32, help="OPTOUT_WEBHOOK_CONCURRENCY (default 32)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--serve", type=float, metavar="DELAY_MS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve / 1000))
        return 0
    report = asyncio.run(run(args))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else render(report))
    return 0


async def serve(delay: float) -> None:
    """Answer 200 to every request (keep-alive) until stdin closes; print the port first."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    print(served, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    from aiokafka import AIOKafkaProducer

    from worker.classify.scope import change_key
    from worker.config import Settings
    from worker.dev.stack import postgres_url_for, start_broker, with_database
    from worker.events.inbound import format_instant
    from worker.events.outgoing import derive_id, encode_change
    from worker.model import Action, ChangeEvent, Scope, ScopeLevel
    from worker.store.migrate import migrate
    from worker.stream.kafka import ensure_topics
    from worker.webhooks.dispatcher import run_dispatcher
    from worker.webhooks.store import add_endpoint

    with (
        tempfile.TemporaryDirectory(prefix="optout-bench-webhooks-") as tmp,
        postgres_url_for(Path(tmp) / "pg") as server,
    ):
        broker = start_broker(log_path=Path(tmp) / "tansu.log")
        name = f"optout_hooks_{uuid.uuid4().hex[:8]}"
        database = with_database(server, name)
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate(database)
        receiver, port = _start_receiver(args.delay_ms)
        try:
            env = {
                "OPTOUT_KAFKA_BOOTSTRAP": broker.bootstrap,
                "OPTOUT_PARTITIONS": "4",
                "OPTOUT_LOG_LEVEL": "WARNING",
                "OPTOUT_BURST_IDLE_MS": "500",
                "OPTOUT_WEBHOOK_CONCURRENCY": str(args.concurrency),
            }
            settings = Settings.from_mapping(env)
            await ensure_topics(settings)
            await add_endpoint(
                database, "acme", f"http://127.0.0.1:{port}/hook", "whsec_" + "x" * 32, frozenset()
            )
            emitted = format_instant(datetime.now(UTC))
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=20)
            await producer.start()
            try:
                for i in range(args.changes):
                    address = f"+1555{i % args.addresses:07d}"
                    round_ = i // args.addresses  # each address's changes in order: block, unblock, ...
                    at = f"2026-11-24T12:{round_ // 60 % 60:02d}:{round_ % 60:02d}.000000Z"
                    action = Action.BLOCK if round_ % 2 == 0 else Action.UNBLOCK
                    event = ChangeEvent(
                        event_id=derive_id("bench", str(i)),
                        action=action,
                        scope=Scope(ScopeLevel.ACCOUNT, "acme", None, None, "sms"),
                        address=address,
                        keyword="STOP",
                        rule="stop",
                        reason="opt_out_keyword",
                        source=None,
                        occurred_at=at,
                    )
                    await producer.send(
                        settings.topic_changes, encode_change(event, emitted), key=change_key(event)
                    )
                await producer.flush()
            finally:
                await producer.stop()
            stats = await run_dispatcher(settings, database, burst=True)
        finally:
            served = _stop_receiver(receiver)
            broker.stop()
    seconds = (stats.last_batch_done_at or 0) - (stats.first_record_at or 0)
    return {
        "changes": args.changes,
        "addresses": args.addresses,
        "concurrency": args.concurrency,
        "receiver_delay_ms": args.delay_ms,
        "deliveries": served,
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(served / seconds) if seconds > 0 else None,
        "batches": stats.batches,
    }


def _start_receiver(delay_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.webhooks", "--serve", str(delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert receiver.stdout is not None
    return receiver, int(receiver.stdout.readline())


def _stop_receiver(receiver: subprocess.Popen[bytes]) -> int:
    """Close its stdin (it stops) and read how many requests it answered."""
    assert receiver.stdin is not None
    assert receiver.stdout is not None
    receiver.stdin.close()
    served = int(receiver.stdout.readline() or 0)
    receiver.wait(30)
    return served


def render(report: dict[str, Any]) -> str:
    return (
        f"{report['deliveries']:,} signed deliveries of {report['changes']:,} changes "
        f"({report['addresses']:,} addresses, concurrency {report['concurrency']}, receiver delay "
        f"{report['receiver_delay_ms']} ms) in {report['seconds']} s: "
        f"{report['deliveries_per_s']:,} deliveries/s over {report['batches']} batches"
    )


if __name__ == "__main__":
    raise SystemExit(main())
