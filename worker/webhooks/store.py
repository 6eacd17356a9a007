"""Webhook endpoints in Postgres (migration 0006): add, list, disable, and load the enabled ones.

A table rather than a file: the endpoints are per account and change while the dispatcher runs
(the dispatcher reloads them every ``OPTOUT_WEBHOOK_REFRESH`` seconds, with no restart and no file
to distribute to every replica), and Postgres already holds the rest of the accounts' state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from worker.store.postgres import connect_once, translate_errors
from worker.webhooks.endpoints import Endpoint, Loaded

_COLUMNS = "id, account_id, url, secret, categories, created_at"


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row["id"],
        row["account_id"],
        row["url"],
        row["secret"],
        frozenset(row["categories"]),
        row["created_at"],
    )


@contextlib.asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await connect_once(dsn)
    try:
        with translate_errors(dsn):
            yield conn
    finally:
        with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await conn.close(timeout=5)


async def add_endpoint(
    dsn: str, account_id: str, url: str, secret: str, categories: frozenset[str]
) -> Endpoint:
    async with _connection(dsn) as conn:
        row = await conn.fetchrow(
            f"INSERT INTO webhook_endpoints (account_id, url, secret, categories) "
            f"VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            account_id,
            url,
            secret,
            sorted(categories),
        )
    return _endpoint(row)


async def list_endpoints(
    dsn: str, account_id: str | None = None, *, disabled: bool = False
) -> list[dict[str, Any]]:
    """Endpoints as rows for display: never the secret."""
    async with _connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT id, account_id, url, categories, created_at, disabled_at FROM webhook_endpoints "
            "WHERE ($1::text IS NULL OR account_id = $1) AND ($2 OR disabled_at IS NULL) ORDER BY id",
            account_id,
            disabled,
        )
    return [dict(row) for row in rows]


async def disable_endpoint(dsn: str, endpoint_id: int, account_id: str | None) -> bool:
    """Disable an enabled endpoint (of ``account_id`` when given); False when there is none."""
    async with _connection(dsn) as conn:
        status = await conn.execute(
            "UPDATE webhook_endpoints SET disabled_at = clock_timestamp() "
            "WHERE id = $1 AND disabled_at IS NULL AND ($2::text IS NULL OR account_id = $2)",
            endpoint_id,
            account_id,
        )
    return status.endswith(" 1")


async def load_enabled(dsn: str) -> Loaded:
    """The enabled endpoints, and Postgres's clock just before they were read."""
    async with _connection(dsn) as conn:
        as_of = await conn.fetchval("SELECT clock_timestamp()")
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id"
        )
    return Loaded(tuple(_endpoint(row) for row in rows), as_of)
