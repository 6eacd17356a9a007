"""The Quix Streams peer: the opt-out job as a Quix Streams user would write it.

:func:`build_app` is the application: JSON values in, :func:`~bench.peers.keywords.event_for` on
each, one JSON record out per keyword MO, offsets committed every second: Quix's defaults
otherwise (JSON deserializer, at-least-once, its own producer and consumer settings). The rest of
the constructor call is quiet logging, a throw-away state directory, the measurement hooks
:func:`measure` passes in, and one accommodation for Tansu:

* ``session.timeout.ms=10000``: librdkafka's default is 45 s, and Tansu holds a group's first
  join for about half the session timeout; the worker and the faust peer use 10 s as well. Group
  join is outside the measured window either way; this only keeps the run short.
* The topics are created by the bench before the app starts, so every contender reads and
  writes the same number of partitions; Quix then only looks them up. (Its auto-create works on
  Tansu too, but makes one-partition topics.)

Nothing else is needed for Tansu: Quix's default idempotent producer (``enable.idempotence``,
which Quix forces on) gets its producer id from Tansu and delivers, checked by counting the
output topic after every run.

:func:`measure` runs it as a bench phase: it counts records with Quix's ``on_message_processed``
hook (and its error hooks, for records it skips), and stops the app once every record is done.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import time
import uuid
from typing import Any

from bench.peers.keywords import event_for
from bench.phases import PhaseConfig, PhaseResult, maxrss_kb

#: The job's commit interval, for every peer (the issue's "commit every 1 s").
COMMIT_INTERVAL_S = 1.0


def build_app(
    bootstrap: str,
    group: str,
    inbound: str,
    output: str,
    *,
    state_dir: str,
    hooks: dict[str, Any] | None = None,
) -> Any:
    """The Quix application (untyped: quixstreams' own types are not part of our mypy run)."""
    # The ignore: quixstreams is in the bench extra only, and `make lint` runs mypy without it.
    from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=COMMIT_INTERVAL_S,
        loglevel="WARNING",
        state_dir=state_dir,  # stateless app, but Quix wants a place; keep it out of the repo
        consumer_extra_config={"session.timeout.ms": 10_000},  # Tansu: first join waits ~half of it
        **(hooks or {}),
    )
    mos = app.dataframe(app.topic(inbound))  # JSON values, bytes keys (the subscriber)
    events = mos.apply(event_for).filter(lambda event: event is not None)
    events.to_topic(app.topic(output))  # keeps the MO's key
    return app


def measure(config: PhaseConfig) -> PhaseResult:
    """Run the app until every inbound record has been handled; the window is first to last record.

    The window ends when the last record has been processed, i.e. its output handed to
    librdkafka; the final flush and commit (at most one commit interval of offsets) happen after.
    That flatters Quix slightly next to the classifier, whose window ends at its last commit;
    ``extra["after_last_record_s"]`` says how long the stop took.
    """
    result = PhaseResult("quix")
    window: list[float] = []
    state = {"handled": 0, "skipped_undecodable": 0, "skipped_malformed": 0}
    app: Any = None

    def handled() -> None:
        if not window:
            window.append(time.monotonic())
        state["handled"] += 1
        if state["handled"] == config.messages:
            window.append(time.monotonic())
            app.stop()  # leaves the poll loop after this record; Quix then flushes and commits

    def on_message_processed(topic: str, partition: int, offset: int) -> None:
        handled()

    def on_consumer_error(exc: Exception, message: Any, logger: logging.Logger) -> bool:
        if message is None:
            return False  # a Kafka error, not a bad record: let Quix raise it
        state["skipped_undecodable"] += 1  # invalid JSON: skip it, as a user would configure
        handled()
        return True

    def on_processing_error(exc: Exception, row: Any, logger: logging.Logger) -> bool:
        state["skipped_malformed"] += 1  # a JSON array, a missing field: skip the record
        return True  # Quix then stores its offset and calls on_message_processed

    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        app = build_app(
            config.bootstrap,
            f"bench-quix-{uuid.uuid4().hex[:10]}",
            config.inbound,
            config.peer_output,
            state_dir=state_dir,
            hooks={
                "on_message_processed": on_message_processed,
                "on_consumer_error": on_consumer_error,
                "on_processing_error": on_processing_error,
            },
        )
        result.start_rss_kb = maxrss_kb()
        app.run()
        stopped = time.monotonic()
    result.records = state["handled"]
    if len(window) == 2:
        result.window = window
        result.seconds = window[1] - window[0]
    else:
        result.error = f"quix handled {state['handled']} of {config.messages} records"
    result.extra = {
        **state,
        "librdkafka": _librdkafka_version(),
        "after_last_record_s": round(stopped - window[1], 3) if len(window) == 2 else None,
    }
    return result


def _librdkafka_version() -> str:
    # Through importlib: confluent-kafka ships no type information, and it is Quix's dependency.
    return str(importlib.import_module("confluent_kafka").libversion()[0])
