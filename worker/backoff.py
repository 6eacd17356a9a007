"""Retry with exponential backoff, logging once per state change instead of once per attempt.

An outage of the broker or Postgres should produce two log lines (down, back up), not a crash
loop or a wall of tracebacks; the attempt count is in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

from worker.heartbeat import HEARTBEAT
from worker.logs import ServiceState

#: The stop event of the loop running in this context (set by :func:`wake_on`): a backoff sleep
#: ends as soon as it is set, so SIGTERM during an outage stops the worker at once, not after the
#: current sleep (up to 15 s). A context variable, so each loop (and the tasks it starts) sees its
#: own event and no call site has to pass it.
_STOP: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("optout_stop", default=None)

#: While stopping (the stop event already set), retries still wait this long between attempts.
STOPPING_DELAY = 1.0


def wake_on(stop: asyncio.Event) -> None:
    """Make every backoff sleep in the current context (and tasks created from it) end when
    ``stop`` is set."""
    _STOP.set(stop)


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
        stop = _STOP.get()
        if stop is None:
            await asyncio.sleep(self.delay)
        elif stop.is_set():  # stopping: the caller retries a while longer (say, to deliver a batch)
            await asyncio.sleep(min(self.delay, STOPPING_DELAY))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.delay)
        HEARTBEAT.tick()
        self.delay = min(self.delay * 2, self.maximum)

    def succeeded(self) -> None:
        self.state.up()
        self.delay = self.initial
        self.attempts = 0
