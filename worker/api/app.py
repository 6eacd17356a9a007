"""``create_app``: the HTTP API as a FastAPI application over a connected Store and producer.

The app owns no connection: whoever creates it (``optout api`` in :mod:`worker.api.serve`, or a
test) opens the Store and the producer first and closes them after the server stopped, so the
same app runs under uvicorn and in-process under httpx's ASGI transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.api import health, problems, reads, writes
from worker.api.context import ApiContext
from worker.api.metrics import ApiMetrics, MetricsMiddleware
from worker.api.ratelimit import RateLimiter
from worker.config import Settings
from worker.events.address import Countries
from worker.store.postgres import Store

#: Seconds a verified token is trusted before Postgres is asked again (revocation takes that long).
TOKEN_TTL = 5.0

DESCRIPTION = """\
Check, list, block and unblock subscribers of one account, and read their history.

Every /v1 route needs a bearer token (`optout token create --account A --name N`), and acts for the
token's account only. Errors are RFC 9457 problem details (application/problem+json).
"""


def create_app(
    store: Store,
    producer: AIOKafkaProducer,
    settings: Settings,
    *,
    countries: Countries | None = None,
    limiter: RateLimiter | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] = time.monotonic,
    token_ttl: float = TOKEN_TTL,
) -> FastAPI:
    """The API. ``countries``: the default countries of national numbers (the rules file's);
    ``limiter``: per-token rate limits (default OPTOUT_API_RATE / OPTOUT_API_BURST);
    ``token_ttl``: seconds a token's row is reused before Postgres is asked again (so a revoked
    token stops working within that long; 0: every request asks)."""
    app = FastAPI(
        title="optout-worker API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    registry = registry or CollectorRegistry()
    app.state.optout = ApiContext(
        store=store,
        producer=producer,
        settings=settings,
        countries=countries or Countries(),
        limiter=limiter or RateLimiter(settings.api_rate, settings.api_burst, clock),
        registry=registry,
        clock=clock,
        token_ttl=token_ttl,
    )
    problems.install(app)
    app.include_router(reads.router)
    app.include_router(writes.router)
    app.include_router(health.router)
    if settings.link_secret:  # the opt-out link pages (/u/{token}) are served where a key is set
        app.include_router(_links(store, producer, settings))
    app.add_middleware(MetricsMiddleware, metrics=ApiMetrics(registry))
    return app


def _links(store: Store, producer: AIOKafkaProducer, settings: Settings) -> APIRouter:
    """``/u/{token}`` (:mod:`worker.api.links`) on this app's store and producer: a confirmed link is
    produced with acknowledgement, like the API's own blocks."""
    from worker.api.links import links_router
    from worker.ops.manual import send_acknowledged
    from worker.stream.produce import Record

    async def send(records: list[Record]) -> None:
        await send_acknowledged(producer, records, settings)

    return links_router(settings.link_signing_secret(), store, send, settings.topic_changes)


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of :func:`create_app` (no connection needed: routes are not called)."""
    app = create_app(None, None, settings)  # type: ignore[arg-type]
    return app.openapi()
