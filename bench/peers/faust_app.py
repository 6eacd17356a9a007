"""The faust-streaming peer: the opt-out job as one faust agent, the same job as the Quix app.

:func:`build_app` is the application: raw values in, ``orjson.loads`` and
:func:`~bench.peers.keywords.event_for` on each, one JSON record out per keyword MO through
``topic.send()``, offsets committed every second. Raw values rather than
``value_serializer="json"``: with faust's JSON codec one truncated record raises inside the
agent's ``async for`` and stops the agent, so a faust user with dirty input decodes in the agent.

Settings beyond faust's defaults, each for a reason:

* ``broker_commit_interval=1.0``: the job's commit interval (faust's default is 2.8 s).
* ``broker_max_poll_records`` and ``stream_buffer_maxsize`` at the classifier's batch size:
  parity with the worker's consumer, which can only help faust.
* ``broker_session_timeout=10``: Tansu holds a group's first join for about half the session
  timeout; faust's default 60 s would add half a minute of start-up (outside the window).
* ``topic_allow_declare=False``: the bench creates the topics (same partitions for everyone).
* ``store="memory://"``, ``web_enabled=False``: stateless, headless.

No Tansu workaround beyond those: faust's aiokafka producer is not idempotent by default.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from bench.peers.keywords import event_for
from bench.phases import MAX_RECORDS, PhaseConfig, PhaseResult, maxrss_kb

COMMIT_INTERVAL_S = 1.0
_MALFORMED = (orjson.JSONDecodeError, KeyError, TypeError, AttributeError)


def build_app(
    bootstrap: str,
    group: str,
    inbound: str,
    output: str,
    partitions: int,
    datadir: str,
    on_record: Callable[[], None] = lambda: None,
) -> Any:
    """The faust app (untyped: faust ships no type information mypy can use). ``datadir``: where
    faust keeps its local state (a ``<group>-data`` directory in the working directory otherwise,
    which every run left behind in the repository)."""
    import faust

    app = faust.App(
        group,
        datadir=datadir,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_max_poll_records=MAX_RECORDS,
        stream_buffer_maxsize=MAX_RECORDS,
        broker_session_timeout=10.0,
    )
    mos = app.topic(inbound, key_type=bytes, value_type=bytes, value_serializer="raw")
    events = app.topic(output, key_type=bytes, value_serializer="json")

    async def optout(stream: Any) -> None:
        async for key, value in stream.items():
            try:
                event = event_for(orjson.loads(value))
            except _MALFORMED:
                event = None  # a bad record: skip it
            if event is not None:
                await events.send(key=key, value=event)
            on_record()

    app.agent(mos)(optout)  # not as a decorator: faust's types depend on its version
    return app


async def measure(config: PhaseConfig) -> PhaseResult:
    """Run the agent until it has handled every inbound record; the window is first to last record.

    As for Quix, the window ends when the last record's output has been handed to the producer,
    before faust's final flush and commit.
    """
    result = PhaseResult("faust")
    done = asyncio.Event()
    window: list[float] = []
    handled = 0

    def on_record() -> None:
        nonlocal handled
        if not window:
            window.append(time.monotonic())
        handled += 1
        if handled == config.messages:
            window.append(time.monotonic())
            done.set()

    with tempfile.TemporaryDirectory(prefix="optout-bench-faust-") as datadir:
        app = build_app(
            config.bootstrap,
            f"bench-faust-{uuid.uuid4().hex[:10]}",
            config.inbound,
            config.peer_output,
            config.partitions,
            datadir,
            on_record,
        )
        result.start_rss_kb = maxrss_kb()
        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120.0, config.messages / 1000))
        except TimeoutError:
            result.error = f"faust handled {handled} of {config.messages} records in time"
        finally:
            await app.stop()
    result.records = handled
    if len(window) == 2:
        result.window = window
        result.seconds = window[1] - window[0]
    return result
