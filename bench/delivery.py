"""The cost of exactly-once: the classifier's msgs/s on Apache Kafka in both delivery modes.

::

    .venv/bin/python -m bench.delivery [--messages 300000] [--rounds 4] [--batch auto] [--partitions 4]

Starts a throwaway Apache Kafka broker (``worker.dev.kafka_broker``; needs Java, and Maven the first
time), fills an inbound topic with the classifier benchmark's workload (``bench.workload``: 3%
keyword MOs), then runs ``run_classifier(burst=True)`` over the same topic with a fresh group in
each mode, alternating which goes first per round (the shared machine's speed drifts between runs).
Prints one line per run; asserts nothing. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.workload import Workload, generate
from worker.config import Settings
from worker.dev.kafka_broker import KafkaBroker, cached_libs, missing_tools
from worker.stream.classifier import run_classifier
from worker.stream.delivery import EXACTLY_ONCE

MODES = ("exactly-once", "at-least-once")


async def fill(bootstrap: str, suffix: str, partitions: int, messages: int) -> None:
    """Create the four topics (every run writes to the same outputs) and fill the inbound one."""
    topic = f"mo.inbound.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topic, partitions, 1),
                NewTopic(
                    f"blocklist.changes.{suffix}", partitions, 1, topic_configs={"cleanup.policy": "compact"}
                ),
                NewTopic(f"optout.replies.{suffix}", partitions, 1),
                NewTopic(f"mo.inbound.dlq.{suffix}", partitions, 1),
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for record in generate(Workload(messages)):
            pending.append(await producer.send(topic, record.value, key=record.key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def measure(args: argparse.Namespace, bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    inbound = f"mo.inbound.{suffix}"
    await fill(bootstrap, suffix, args.partitions, args.messages)
    for round_ in range(args.rounds):
        for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
            settings = Settings.from_mapping(
                {
                    "OPTOUT_KAFKA_BOOTSTRAP": bootstrap,
                    "OPTOUT_TOPIC_INBOUND": inbound,
                    "OPTOUT_TOPIC_CHANGES": f"blocklist.changes.{suffix}",
                    "OPTOUT_TOPIC_REPLIES": f"optout.replies.{suffix}",
                    "OPTOUT_TOPIC_DEAD_LETTER": f"mo.inbound.dlq.{suffix}",
                    "OPTOUT_GROUP_ID": f"bench-{suffix}-{round_}-{mode}",
                    "OPTOUT_DELIVERY": mode,
                    "OPTOUT_BATCH_MAX_RECORDS": str(args.batch),
                    "OPTOUT_BURST_IDLE_MS": "1000",
                    "OPTOUT_POLL_TIMEOUT_MS": "100",
                }
            )
            stats = await run_classifier(settings, burst=True)
            assert stats.first_record_at is not None
            assert stats.last_batch_done_at is not None
            seconds = stats.last_batch_done_at - stats.first_record_at
            batch = sorted(stats.batch_seconds)
            most = settings.batch_records(exactly_once=mode == EXACTLY_ONCE)
            print(
                f"batch {most:5} {mode:13} {stats.records} records in {seconds:6.2f} s = "
                f"{stats.records / seconds:8,.0f} msgs/s; batch p50 {batch[len(batch) // 2] * 1000:.1f} ms, "
                f"p99 {batch[int(len(batch) * 0.99)] * 1000:.1f} ms",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", default="auto", help="OPTOUT_BATCH_MAX_RECORDS (auto)")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    if (missing := missing_tools(need_maven=cached_libs() is None)) is not None:
        print(f"skipped: {missing}")
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="optout-bench-delivery-") as data,
        KafkaBroker(Path(data) / "kafka") as broker,
    ):
        asyncio.run(measure(args, broker.bootstrap))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
