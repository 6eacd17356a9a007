"""The benchmark's phases, each run in a child process: ``python -m bench.phases PHASE CONFIG RESULT``.

Why a process per phase: peak RSS is a per-process high-water mark, so a phase that shares a
process with the producer (or with another phase) would report the larger of the two. Each child
reads its :class:`PhaseConfig` from the JSON file ``CONFIG``, does its one job, and writes its
result, including its own ``getrusage(RUSAGE_SELF).ru_maxrss``, as JSON to ``RESULT``. A file,
not stdout, so a library that prints cannot corrupt the result.

Throughput windows are the same for the ceiling and the classifier: from the moment the first
non-empty ``getmany()`` returns to the moment the last batch is done. Group join and the burst
run's final idle wait are outside the window, so neither flatters nor penalizes either side.
Every phase also reports that window in monotonic time, and :func:`main` turns it into the CPU
seconds the process spent inside it (:mod:`bench.cpuclock`): the cost per MO, whatever the rate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.cpuclock import CpuTrace
from bench.workload import ACCOUNTS, Expect, Workload, generate
from worker.logs import KafkaNoiseFilter

#: Records per chunk of un-awaited sends: large enough to keep the producer's batches full,
#: small enough that the pending futures stay a few MB.
PRODUCE_CHUNK = 20_000
#: The ceiling consumer gives up after this long without a record (a broken broker or topic).
IDLE_GIVE_UP_SECONDS = 30.0
#: Same as the classifier's default batch size (worker.constants.MAX_BATCH_RECORDS).
MAX_RECORDS = 5000


@dataclass(frozen=True, slots=True)
class PhaseConfig:
    bootstrap: str
    inbound: str
    changes: str
    replies: str
    dead_letter: str
    messages: int
    partitions: int
    keyword_ratio: float
    bad_ratio: float
    seed: int
    keyword_shares: dict[str, float] | None = None
    """Per-intent shares of all records (``{"opt_out": 0.09, ...}``); ``None``: ``keyword_ratio``
    split by the workload's default keyword weights."""
    peer_output: str = ""
    """The topic a peer (Quix, faust) writes its events to."""
    group_id: str = ""
    """The consumer group of a classifier process that shares the input with others (the
    scale-out run; each handles part of it); empty: a fresh group that reads it all."""
    accounts: int = ACCOUNTS
    """The accounts the MOs are spread over (``--accounts``): the classifier's per-context caches
    hit less the more accounts (and so senders and subaccounts) its keyword MOs come from."""


@dataclass(slots=True)
class PhaseResult:
    """What every phase reports; ``extra`` holds the phase's own details."""

    phase: str
    records: int = 0
    seconds: float = 0.0
    peak_rss_kb: int = 0
    start_rss_kb: int = 0
    """``ru_maxrss`` just before the measured work: the interpreter, imports and clients."""
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    window: list[float] = field(default_factory=list)
    """``[start, end]`` of the measured window, ``time.monotonic()`` of the phase's process."""
    cpu_seconds: float = 0.0
    """CPU (user + system, all threads) the process spent inside ``window``."""
    process_cpu_seconds: float = 0.0
    """CPU the process spent in all, start-up and group join included."""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> PhaseResult:
        return cls(**orjson.loads(raw))


def maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _workload(config: PhaseConfig) -> Workload:
    shares = tuple(config.keyword_shares.items()) if config.keyword_shares is not None else None
    return Workload(
        config.messages,
        config.keyword_ratio,
        config.bad_ratio,
        accounts=config.accounts,
        seed=config.seed,
        keyword_shares=shares,
    )


# --- produce ------------------------------------------------------------------------------------


async def produce(config: PhaseConfig) -> PhaseResult:
    """Fill the inbound topic; the rate includes generating the records (setup, not a result)."""
    from aiokafka import AIOKafkaProducer

    result = PhaseResult("produce")
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap,
        acks="all",
        enable_idempotence=False,  # Tansu supports neither idempotent nor transactional producers
        linger_ms=20,
        max_batch_size=512 * 1024,
        request_timeout_ms=30_000,
    )
    expected: Counter[str] = Counter()
    peer_expected: Counter[str] = Counter()
    value_bytes = 0
    try:
        await producer.start()
        result.start_rss_kb = maxrss_kb()
        started = time.monotonic()
        pending = []
        for record in generate(_workload(config)):
            expected[record.expect.value] += 1
            peer_expected[_peer_action(record.value)] += 1
            value_bytes += len(record.value)
            # send() only waits when the accumulator is full; the future resolves on the ack.
            pending.append(await producer.send(config.inbound, record.value, key=record.key))
            if len(pending) >= PRODUCE_CHUNK:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        result.seconds = time.monotonic() - started
        result.records = sum(expected.values())
    finally:
        await producer.stop()
    result.extra = {
        "expected": dict(expected),
        "peer_expected": dict(peer_expected),
        "value_bytes": value_bytes,
    }
    return result


def _peer_action(value: bytes) -> str:
    """What the peers make of a record (:mod:`bench.peers.keywords`), so their output can be checked."""
    from bench.peers.keywords import event_for

    try:
        event = event_for(orjson.loads(value))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "skipped"
    return "none" if event is None else str(event["action"])


# --- ceiling ------------------------------------------------------------------------------------


async def ceiling(config: PhaseConfig) -> PhaseResult:
    """Plain aiokafka: consume the whole topic and ``orjson.loads`` every value, nothing else.

    The consumer is built by the worker's own :func:`worker.stream.kafka.make_consumer` (fetch sizes,
    wait times) with a fresh group, so the one difference from the classifier phase is the
    classifier's work: classifying, producing the derived events, waiting for acks, committing.
    """
    from worker.config import Settings
    from worker.stream.kafka import make_consumer

    settings = Settings.from_mapping({"OPTOUT_KAFKA_BOOTSTRAP": config.bootstrap})
    result = PhaseResult("ceiling")
    consumer = make_consumer(settings, f"bench-ceiling-{uuid.uuid4().hex[:10]}", max_poll_records=MAX_RECORDS)
    consumer.subscribe([config.inbound])
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    consumed = undecodable = 0
    first: float | None = None
    try:
        await consumer.start()
        last_data = time.monotonic()
        result.start_rss_kb = maxrss_kb()
        while consumed < config.messages:
            batch = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            now = time.monotonic()
            if not batch:
                if now - last_data > IDLE_GIVE_UP_SECONDS:
                    result.error = f"no record for {IDLE_GIVE_UP_SECONDS:.0f}s after {consumed} of them"
                    break
                continue
            first = first if first is not None else now
            last_data = now
            for records in batch.values():
                for record in records:
                    try:
                        loads(record.value)
                    except decode_error:
                        undecodable += 1
                consumed += len(records)
            result.batches += 1
            result.batch_seconds.append(time.monotonic() - now)
        result.records = consumed
        if first is not None:
            result.window = [first, time.monotonic()]
            result.seconds = result.window[1] - first
    finally:
        await consumer.stop()
    result.extra = {"undecodable": undecodable}
    return result


# --- classifier ---------------------------------------------------------------------------------


async def classifier(config: PhaseConfig) -> PhaseResult:
    """The real classifier (``worker.stream.classifier.run_classifier``) in burst mode, fresh group.

    Its settings are the defaults, with any other ``OPTOUT_*`` variable of the environment applied
    (``OPTOUT_CONFIRMATION_WINDOW=0 make bench``: what a setting costs, on the same input); the
    bench's own (broker, topics, group) win, and the ones applied are in the JSON."""
    from prometheus_client import CollectorRegistry

    from worker.config import SETTINGS, Settings
    from worker.stream.classifier import run_classifier

    chosen = {name: value for name, value in os.environ.items() if name.startswith("OPTOUT_")}
    own = {
        "OPTOUT_KAFKA_BOOTSTRAP": config.bootstrap,
        "OPTOUT_TOPIC_INBOUND": config.inbound,
        "OPTOUT_TOPIC_CHANGES": config.changes,
        "OPTOUT_TOPIC_REPLIES": config.replies,
        "OPTOUT_TOPIC_DEAD_LETTER": config.dead_letter,
        "OPTOUT_GROUP_ID": config.group_id or f"bench-classifier-{uuid.uuid4().hex[:10]}",
        "OPTOUT_METRICS_PORT": "0",
        "OPTOUT_BURST_IDLE_MS": "1000",
    }
    applied = {name: value for name, value in chosen.items() if name not in own}
    settings = Settings.from_mapping(applied | own)
    registry = CollectorRegistry()
    result = PhaseResult("classifier", start_rss_kb=maxrss_kb())
    stats = await run_classifier(settings, burst=True, registry=registry)
    result.records = stats.records
    result.batches = stats.batches
    result.batch_seconds = list(stats.batch_seconds)
    if stats.first_record_at is not None and stats.last_batch_done_at is not None:
        result.window = [stats.first_record_at, stats.last_batch_done_at]
        result.seconds = stats.last_batch_done_at - stats.first_record_at
    if stats.records < config.messages and not config.group_id:  # a shared group: counted together
        result.error = f"the classifier stopped after {stats.records} of {config.messages} records"

    def sample(name: str, labels: dict[str, str] | None = None) -> int:
        return int(registry.get_sample_value(name, labels or {}) or 0)

    intents = {e.value: sample("optout_records_classified_total", {"intent": e.value}) for e in Expect}
    intents.pop(Expect.DEAD_LETTER.value)
    result.extra = {
        "classified": intents,
        "dead_lettered": sum(
            int(s.value)
            for metric in registry.collect()
            if metric.name == "optout_records_dead_lettered"
            for s in metric.samples
            if s.name.endswith("_total")
        ),
        "changes": sample("optout_changes_produced_total"),
        "replies": sample("optout_replies_produced_total"),
        "commit_failures": sample("optout_commit_failures_total"),
        "settings_from_environment": " ".join(
            f"{setting.env}={setting.shown(applied[setting.env])}"
            for setting in SETTINGS
            if setting.env in applied
        ),
    }
    return result


# --- peers (optional: pip install -e '.[bench]') -------------------------------------------------


def _faust(config: PhaseConfig) -> PhaseResult:
    from bench.peers.faust_app import measure

    return asyncio.run(measure(config))


def _quix(config: PhaseConfig) -> PhaseResult:
    from bench.peers.quix_app import measure

    return measure(config)  # Quix runs its own blocking poll loop, in the main thread


def _in_loop(
    phase: Callable[[PhaseConfig], Coroutine[Any, Any, PhaseResult]],
) -> Callable[[PhaseConfig], PhaseResult]:
    def run(config: PhaseConfig) -> PhaseResult:
        return asyncio.run(phase(config))

    return run


PHASES: dict[str, Callable[[PhaseConfig], PhaseResult]] = {
    "produce": _in_loop(produce),
    "ceiling": _in_loop(ceiling),
    "classifier": _in_loop(classifier),
    "faust": _faust,
    "quix": _quix,
}


def main(argv: list[str]) -> int:
    phase, config_path, result_path = argv
    # Ctrl-C reaches the whole process group. The parent alone decides what happens then (it
    # terminates us and stops the broker), so a half-handled interrupt here cannot race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = PhaseConfig(**orjson.loads(Path(config_path).read_bytes()))
    # The worker logs each batch at DEBUG and its lifecycle at INFO; only problems belong here.
    logging.basicConfig(level=logging.WARNING, format=f"[{phase}] %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # aiokafka's noise as the worker logs it: the
        handler.addFilter(KafkaNoiseFilter())  # feature probe's ERROR on Tansu dropped, outages one line
    trace = CpuTrace().start()
    try:
        result = PHASES[phase](config)
    except Exception as exc:  # report it: the parent prints it and still stops the broker
        logging.getLogger("bench").exception("phase %s failed", phase)
        result = PhaseResult(phase, error=f"{type(exc).__name__}: {exc}")
    trace.stop()
    if len(result.window) == 2:
        result.cpu_seconds = trace.between(*result.window)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.process_cpu_seconds = usage.ru_utime + usage.ru_stime
    result.peak_rss_kb = maxrss_kb()
    Path(result_path).write_bytes(result.to_json())
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
