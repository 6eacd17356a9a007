"""Liveness and readiness, kept apart: Kubernetes restarts a pod that is not live and only stops
sending it traffic while it is not ready.

* **live** (``/livez``, also ``/healthz``): the worker's loop makes progress. The loop ticks
  :data:`worker.heartbeat.HEARTBEAT` after every poll, and :class:`worker.backoff.Backoff`
  ticks it while it waits out an outage; a heartbeat older than ``stale_after`` seconds means a
  stuck event loop (a blocking call, a deadlock): 503, and the pod is restarted. An outage is *not* a liveness
  failure: restarting would not bring the broker back.
* **ready** (``/readyz``): connected to Kafka, partitions assigned, none of its services
  (:data:`worker.logs.KAFKA`, :data:`worker.logs.POSTGRES`) in an outage, not stopping.

Pure standard library apart from the shared service states: the HTTP server thread reads these
objects, the event loop writes them (single attribute writes, no lock needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.heartbeat import HEARTBEAT, WORKER, Heartbeat, WorkerState
from worker.logs import ServiceState

#: A heartbeat older than this is a stuck loop. Polls come every OPTOUT_POLL_TIMEOUT_MS and backoff
#: sleeps last at most 15 s, so two minutes leaves room for a slow rebalance or a huge batch.
STALE_AFTER_SECONDS = 120.0


@dataclass
class Health:
    """Answers ``/livez`` and ``/readyz`` for one worker process."""

    services: Sequence[ServiceState]
    stopping: Callable[[], bool] = lambda: False
    heartbeat: Heartbeat = field(default_factory=lambda: HEARTBEAT)
    worker: WorkerState = field(default_factory=lambda: WORKER)
    stale_after: float = STALE_AFTER_SECONDS

    def liveness(self) -> tuple[bool, bytes]:
        age = self.heartbeat.age()
        live = age <= self.stale_after
        status = "ok" if live else "stuck"
        return live, orjson.dumps({"status": status, "heartbeat_age_seconds": round(age, 1)})

    def readiness(self) -> tuple[bool, bytes]:
        reasons = []
        if self.stopping():
            reasons.append("stopping")
        if self.heartbeat.age() > self.stale_after:
            reasons.append("loop stuck")
        if not self.worker.connected:
            reasons.append("not connected to Kafka yet")
        elif not self.worker.partitions:
            reasons.append("no partitions assigned")
        reasons += [f"{service.service} unavailable" for service in self.services if service.is_down]
        body = {
            "status": "ready" if not reasons else "not ready",
            "reasons": reasons,
            "partitions": self.worker.partitions,
        }
        return not reasons, orjson.dumps(body)

    def routes(self) -> dict[str, Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]]:
        """``/livez`` and ``/readyz`` as WSGI apps for :func:`worker.ops.httpserver.start_http`."""
        return {"/livez": _endpoint(self.liveness), "/readyz": _endpoint(self.readiness)}


def _endpoint(
    check: Callable[[], tuple[bool, bytes]],
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ok, body = check()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-cache")])
        return [body]

    return app
