"""Retry with exponential backoff, logging once per state change instead of once per attempt.

An outage of the broker or Postgres should produce two log lines (down, back up), not a crash
loop or a wall of tracebacks; the attempt count is in the metrics.
"""

from __future__ import annotations

import asyncio
import logging

from worker.heartbeat import HEARTBEAT
from worker.logs import ServiceState


class Backoff:
    """Sleeps between attempts (doubling up to ``maximum``); up/down lines go through ``state``.

    Pass a shared :class:`ServiceState` (e.g. :data:`worker.logs.KAFKA`) so the loop's retries and
    the client library's own errors report one outage once.
    """

    def __init__(
        self,
        service: str | ServiceState,
        logger: logging.Logger,
        initial: float = 0.2,
        maximum: float = 15.0,
    ) -> None:
        self.state = service if isinstance(service, ServiceState) else ServiceState(service, logger)
        self.initial = initial
        self.maximum = maximum
        self.delay = initial
        self.attempts = 0

    @property
    def failing(self) -> bool:
        return self.state.is_down

    async def failed(self, error: BaseException) -> None:
        """Record a failed attempt and sleep before the next one."""
        self.attempts += 1
        self.state.down(f"{type(error).__name__}: {str(error) or 'no detail'}")
        HEARTBEAT.tick()  # waiting out an outage is progress: live, though not ready
        await asyncio.sleep(self.delay)
        HEARTBEAT.tick()
        self.delay = min(self.delay * 2, self.maximum)

    def succeeded(self) -> None:
        self.state.up()
        self.delay = self.initial
        self.attempts = 0
