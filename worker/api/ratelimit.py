"""Requests per token: a token bucket per API token, in this process's memory (pure).

Each token may make ``burst`` requests at once, refilled at ``rate`` per second. In memory, per
process: with N replicas a token gets up to N times the rate, which is the price of needing no
shared store on the hot path (a Redis for one counter). The clock is injected so tests can move
time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key)`` answers None (go ahead) or the seconds to wait before the next request."""

    #: Buckets of tokens unseen this long are dropped (they would be full again anyway).
    IDLE_SECONDS = 600.0

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._swept = clock()

    def allow(self, key: str) -> float | None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if now - self._swept > self.IDLE_SECONDS:
            self._sweep(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.updated > self.IDLE_SECONDS]:
            del self._buckets[key]


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header for a wait in seconds: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
