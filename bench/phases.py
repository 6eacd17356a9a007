"""The benchmark's phases, each run in a child process: ``python -m bench.phases PHASE CONFIG RESULT``.

Why a process per phase: peak RSS is a per-process high-water mark, so a phase that shares a
process with the producer (or with another phase) would report the larger of the two. Each child
reads its :class:`PhaseConfig` from the JSON file ``CONFIG``, does its one job, and writes its
result, including its own ``getrusage(RUSAGE_SELF).ru_maxrss``, as JSON to ``RESULT``. A file,
not stdout, so a library that prints cannot corrupt the result.

Throughput windows are the same for the ceiling and the classifier: from the moment the first
non-empty ``getmany()`` returns to the moment the last batch is done. Group join and the burst
run's final idle wait are outside the window, so neither flatters nor penalizes either side.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.workload import Expect, Workload, generate

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

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> PhaseResult:
        return cls(**orjson.loads(raw))


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _workload(config: PhaseConfig) -> Workload:
    return Workload(config.messages, config.keyword_ratio, config.bad_ratio, seed=config.seed)


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
    value_bytes = 0
    try:
        await producer.start()
        result.start_rss_kb = _maxrss_kb()
        started = time.monotonic()
        pending = []
        for record in generate(_workload(config)):
            expected[record.expect.value] += 1
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
    result.extra = {"expected": dict(expected), "value_bytes": value_bytes}
    return result


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
        result.start_rss_kb = _maxrss_kb()
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
        result.seconds = time.monotonic() - first if first is not None else 0.0
    finally:
        await consumer.stop()
    result.extra = {"undecodable": undecodable}
    return result


# --- classifier ---------------------------------------------------------------------------------


async def classifier(config: PhaseConfig) -> PhaseResult:
    """The real classifier (``worker.stream.classifier.run_classifier``) in burst mode, fresh group."""
    from prometheus_client import CollectorRegistry

    from worker.config import Settings
    from worker.stream.classifier import run_classifier

    settings = Settings.from_mapping(
        {
            "OPTOUT_KAFKA_BOOTSTRAP": config.bootstrap,
            "OPTOUT_TOPIC_INBOUND": config.inbound,
            "OPTOUT_TOPIC_CHANGES": config.changes,
            "OPTOUT_TOPIC_REPLIES": config.replies,
            "OPTOUT_TOPIC_DEAD_LETTER": config.dead_letter,
            "OPTOUT_GROUP_ID": f"bench-classifier-{uuid.uuid4().hex[:10]}",
            "OPTOUT_METRICS_PORT": "0",
            "OPTOUT_BURST_IDLE_MS": "1000",
        }
    )
    registry = CollectorRegistry()
    result = PhaseResult("classifier", start_rss_kb=_maxrss_kb())
    stats = await run_classifier(settings, burst=True, registry=registry)
    result.records = stats.records
    result.batches = stats.batches
    result.batch_seconds = list(stats.batch_seconds)
    if stats.first_record_at is not None and stats.last_batch_done_at is not None:
        result.seconds = stats.last_batch_done_at - stats.first_record_at
    if stats.records < config.messages:
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
    }
    return result


# --- faust (optional peer) ----------------------------------------------------------------------


async def faust_peer(config: PhaseConfig) -> PhaseResult:
    """A faust-streaming agent that decodes every value: what a stream framework costs on top."""
    import faust

    result = PhaseResult("faust")
    # Faust's defaults except where parity with the worker's consumer matters: records per poll,
    # and the session timeout (Tansu holds a first join for about half of it; faust's default
    # 60 s would add half a minute of start-up, outside the measured window but tedious).
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:10]}",
        broker=f"kafka://{config.bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=config.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=MAX_RECORDS,
        stream_buffer_maxsize=MAX_RECORDS,
        broker_session_timeout=10.0,
    )
    topic = app.topic(config.inbound, key_type=bytes, value_type=bytes, value_serializer="raw")
    done = asyncio.Event()
    state = {"consumed": 0, "undecodable": 0}
    window: list[float] = []

    async def decode(stream: Any) -> None:
        async for value in stream:
            if not window:
                window.append(time.monotonic())
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                state["undecodable"] += 1
            state["consumed"] += 1
            if state["consumed"] >= config.messages:
                window.append(time.monotonic())
                done.set()

    app.agent(topic)(decode)  # not as a decorator: faust's types depend on its version
    result.start_rss_kb = _maxrss_kb()
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=max(120.0, config.messages / 1000))
    except TimeoutError:
        result.error = f"faust consumed {state['consumed']} of {config.messages} records in time"
    finally:
        await app.stop()
    result.records = state["consumed"]
    if len(window) == 2:
        result.seconds = window[1] - window[0]
    result.extra = {"undecodable": state["undecodable"]}
    return result


PHASES = {"produce": produce, "ceiling": ceiling, "classifier": classifier, "faust": faust_peer}


def main(argv: list[str]) -> int:
    phase, config_path, result_path = argv
    # Ctrl-C reaches the whole process group. The parent alone decides what happens then (it
    # terminates us and stops the broker), so a half-handled interrupt here cannot race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = PhaseConfig(**orjson.loads(Path(config_path).read_bytes()))
    # The worker logs each batch at DEBUG and its lifecycle at INFO; only problems belong here.
    logging.basicConfig(level=logging.WARNING, format=f"[{phase}] %(levelname)s %(name)s: %(message)s")
    try:
        result = asyncio.run(PHASES[phase](config))
    except Exception as exc:  # report it: the parent prints it and still stops the broker
        logging.getLogger("bench").exception("phase %s failed", phase)
        result = PhaseResult(phase, error=f"{type(exc).__name__}: {exc}")
    result.peak_rss_kb = _maxrss_kb()
    Path(result_path).write_bytes(result.to_json())
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
