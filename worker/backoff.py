"""Retry with exponential backoff, logging once per state change instead of once per attempt.

An outage of the broker or Postgres should produce two log lines (down, back up), not a crash
loop or a wall of tracebacks; the attempt count is in the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time


class Backoff:
    def __init__(
        self, service: str, logger: logging.Logger, initial: float = 0.2, maximum: float = 15.0
    ) -> None:
        self.service = service
        self.logger = logger
        self.initial = initial
        self.maximum = maximum
        self.delay = initial
        self.attempts = 0
        self.down_since: float | None = None

    @property
    def failing(self) -> bool:
        return self.down_since is not None

    async def failed(self, error: BaseException) -> None:
        """Record a failed attempt and sleep before the next one."""
        self.attempts += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.logger.warning(
                "%s unavailable (%s: %s); retrying with backoff",
                self.service,
                type(error).__name__,
                str(error) or "no detail",
            )
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.maximum)

    def succeeded(self) -> None:
        if self.down_since is not None:
            self.logger.warning(
                "%s available again after %.1fs and %d retries",
                self.service,
                time.monotonic() - self.down_since,
                self.attempts,
            )
        self.down_since = None
        self.delay = self.initial
        self.attempts = 0
