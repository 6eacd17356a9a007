"""What a worker process reports about its own progress, for the liveness and readiness endpoints
(:mod:`worker.ops.health`): a heartbeat the loops tick, and whether Kafka was reached and
partitions are assigned. Standard library only, so any loop (and :mod:`worker.backoff`) can tick it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class Heartbeat:
    def __init__(self) -> None:
        self.last = time.monotonic()

    def tick(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last


#: The process's heartbeat: ticked by the consuming loop (every poll) and by backoff waits.
HEARTBEAT = Heartbeat()


@dataclass
class WorkerState:
    """What the consuming loop reports for readiness."""

    connected: bool = False
    """The Kafka clients have started (reached the broker at least once)."""
    partitions: int = 0
    """Partitions assigned to this member now."""


#: The process's worker state, written by :mod:`worker.stream.loop`.
WORKER = WorkerState()
