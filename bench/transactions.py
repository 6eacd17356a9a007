"""Exactly-once transactions, one partition's back to back, timed on Apache Kafka: what a
classifier's transaction costs without any load, and how the AddPartitionsToTxn retry wait moves it.

``python -m bench.transactions [--transactions N] [--rounds R] [--records K] [--retry FIRST:MOST,...]``

Starts its own Apache Kafka broker, creates the topics (4 partitions), and runs
:meth:`worker.stream.delivery.PartitionProducers.deliver` for one input partition ``N`` times per
round: ``K`` change events and the input offset in one transaction, each transaction right after
the last one's commit, as a busy partition's cycles run (:class:`worker.stream.cycles.TransactionCycles`).
Each ``--retry`` setting (the first and the longest wait in ms after CONCURRENT_TRANSACTIONS,
:mod:`worker.stream.txn_retry`; ``5:5`` is the fixed 5 ms of stops 27-33) runs once per round, in
alternated order. Prints per setting the transactions' p50/p90/p99/mean and how many
CONCURRENT_TRANSACTIONS answers they met. Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONCURRENT_TRANSACTIONS = 51


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transactions", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--transactions", type=int, default=100, help="transactions per setting and round (100)"
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds, the settings alternated (6)")
    parser.add_argument("--records", type=int, default=25, help="change events per transaction (25)")
    parser.add_argument(
        "--retry",
        type=_retry_settings,
        default="1:20,5:5",
        help="FIRST:MOST retry waits in ms, comma-separated (1:20,5:5)",
    )
    return parser.parse_args(argv)


def _retry_settings(text: str) -> list[tuple[float, float]]:
    """``1:20,5:5`` -> [(0.001, 0.02), (0.005, 0.005)] (seconds)."""
    settings = []
    for item in text.split(","):
        first, colon, most = item.partition(":")
        try:
            setting = (float(first) / 1000, float(most) / 1000)
        except ValueError:
            setting = (-1.0, -1.0)
        if not colon or not 0 < setting[0] <= setting[1]:
            raise argparse.ArgumentTypeError(f"{item!r} is not FIRST:MOST in ms with 0 < FIRST <= MOST")
        settings.append(setting)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings: list[tuple[float, float]] = args.retry
    from bench.classifier import percentile
    from worker.dev.stack import start_kafka

    with tempfile.TemporaryDirectory(prefix="bench-transactions-") as work:
        print("[bench.transactions] starting Apache Kafka ...", file=sys.stderr, flush=True)
        broker = start_kafka(Path(work) / "kafka")
        try:
            times, answers = asyncio.run(run(broker.bootstrap, args, settings))
        finally:
            broker.stop()
    for (first, most), spent in times.items():
        p50, p90, p99 = (percentile(spent, q) or 0.0 for q in (50, 90, 99))
        print(
            f"retry {first * 1000:g}-{most * 1000:g} ms: {len(spent)} transactions of {args.records} "
            f"records  p50 {p50:.2f}  p90 {p90:.2f}  p99 {p99:.2f}  "
            f"mean {statistics.fmean(spent):.2f} ms; CONCURRENT_TRANSACTIONS answers "
            f"{answers[(first, most)] / len(spent):.2f} per transaction"
        )
    return 0


async def run(
    bootstrap: str, args: argparse.Namespace, settings: list[tuple[float, float]]
) -> tuple[dict[tuple[float, float], list[float]], Counter[tuple[float, float]]]:
    from aiokafka import TopicPartition

    from bench.latency import _create_topics
    from worker.backoff import Backoff
    from worker.config import Settings
    from worker.logs import KAFKA
    from worker.stream import txn_retry
    from worker.stream.delivery import PartitionProducers
    from worker.stream.kafka import make_consumer

    suffix = uuid.uuid4().hex[:8]
    config = Settings.from_mapping(
        {
            "OPTOUT_KAFKA_BOOTSTRAP": bootstrap,
            "OPTOUT_TOPIC_INBOUND": f"bench.txn.inbound.{suffix}",
            "OPTOUT_TOPIC_CHANGES": f"bench.txn.changes.{suffix}",
            "OPTOUT_TOPIC_REPLIES": f"bench.txn.replies.{suffix}",
            "OPTOUT_TOPIC_DEAD_LETTER": f"bench.txn.dlq.{suffix}",
            "OPTOUT_GROUP_ID": f"bench-txn-{suffix}",
        }
    )
    await _create_topics(bootstrap, config, kafka=True)
    tp = TopicPartition(config.topic_inbound, 0)
    consumer = make_consumer(config, config.group_id)
    await consumer.start()
    consumer.assign([tp])
    log = logging.getLogger("bench.transactions")
    stop = asyncio.Event()
    backoff = Backoff(KAFKA, log)
    producers = PartitionProducers(config, consumer, log)
    answers: Counter[tuple[float, float]] = Counter()
    current: list[tuple[float, float]] = [settings[0]]
    handler = txn_retry.aiokafka_handler()  # counted under whichever wait txn_retry installs
    counted = handler.handle_response

    def counting(self: Any, resp: Any) -> Any:  # counts the answers; the wait stays txn_retry's
        codes = [code for _, partitions in resp.errors for _, code in partitions]
        answers[current[0]] += CONCURRENT_TRANSACTIONS in codes
        return counted(self, resp)

    handler.handle_response = counting
    records = [(config.topic_changes, b"subscriber-%d" % i, b"x" * 300) for i in range(args.records)]
    times: dict[tuple[float, float], list[float]] = {setting: [] for setting in settings}
    offset = 0
    try:
        if not await producers.take_over({tp}, backoff, stop):
            raise RuntimeError("could not take the partition over")
        for round_ in range(args.rounds):
            for setting in settings if round_ % 2 == 0 else settings[::-1]:
                current[0] = setting
                txn_retry.install(*setting)
                for _ in range(args.transactions):
                    started = time.perf_counter()
                    done = await producers.deliver({tp: (offset, offset + 1)}, records, backoff, stop)
                    times[setting].append((time.perf_counter() - started) * 1000)
                    if not done.committed:
                        raise RuntimeError(f"transaction {offset} not committed")
                    offset += 1
    finally:
        handler.handle_response = counted
        await producers.close()
        await consumer.stop()
    return times, answers


if __name__ == "__main__":
    raise SystemExit(main())
