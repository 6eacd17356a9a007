"""What every route needs, built once per app: the store, the producer, the settings, the
countries of national numbers, the rate limiter, the metrics. Routes get it from the request."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from fastapi import Request
from prometheus_client import CollectorRegistry

from worker.api.ratelimit import RateLimiter
from worker.config import Settings
from worker.events.address import Countries
from worker.store.postgres import Store
from worker.store.tokens import StoredToken, TokenStore

#: Token rows cached at most (a flood of made-up ids must not grow memory without bound).
MAX_CACHED = 10_000


@dataclass
class ApiContext:
    store: Store
    producer: AIOKafkaProducer
    settings: Settings
    countries: Countries
    limiter: RateLimiter
    registry: CollectorRegistry
    clock: Callable[[], float] = time.monotonic
    tokens: TokenStore = field(init=False)
    #: When each token's last use was written (monotonic seconds): at most one write a minute.
    touched: dict[str, float] = field(default_factory=dict)
    #: Seconds a token's row is reused without asking Postgres again (0: ask every time). Saves a
    #: query per request; the price is that a revoked token works for up to this long.
    token_ttl: float = 5.0
    cached: dict[str, tuple[float, StoredToken | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = TokenStore(self.store)

    async def find_token(self, token_id: str) -> StoredToken | None:
        """The token's row (or None: no such id), from the cache when younger than ``token_ttl``."""
        now = self.clock()
        hit = self.cached.get(token_id)
        if hit is not None and now - hit[0] < self.token_ttl:
            return hit[1]
        stored = await self.tokens.find(token_id)
        if len(self.cached) >= MAX_CACHED:
            self.cached.clear()  # unknown ids are cached too: bounded, whatever callers send
        self.cached[token_id] = (now, stored)
        return stored


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.optout
    return found
