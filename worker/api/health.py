"""``/healthz`` (the process answers), ``/readyz`` (Postgres and the broker answer) and ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.api.context import ApiContext, context

router = APIRouter(tags=["operations"])

#: Seconds each readiness probe may take: a probe that hangs is a service that is not there.
PROBE_TIMEOUT = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: Postgres and the broker answer",
    responses={503: {"description": "not ready; reasons says which service is down"}},
)
async def readyz(ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    reasons = []
    try:
        await asyncio.wait_for(_ping(ctx), PROBE_TIMEOUT)
    except Exception:
        reasons.append("Postgres unavailable")
    try:
        await asyncio.wait_for(ctx.producer.client.fetch_all_metadata(), PROBE_TIMEOUT)
    except Exception:
        reasons.append("Kafka unavailable")
    body = {"status": "not ready" if reasons else "ready", "reasons": reasons}
    return Response(orjson.dumps(body), status_code=503 if reasons else 200, media_type="application/json")


async def _ping(ctx: ApiContext) -> None:
    async with ctx.store.connection() as conn:
        await conn.fetchval("SELECT 1")


@router.get("/metrics", summary="Prometheus metrics of this process", include_in_schema=False)
async def metrics(ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
