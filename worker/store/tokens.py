"""The ``api_tokens`` table (migration 0004): made and revoked by ``optout token``, read by the API.

Holds the sha256 of each secret, never the secret (:mod:`worker.api.tokens`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from worker.events.inbound import format_instant
from worker.store.postgres import Store

_INSERT = """
INSERT INTO api_tokens (token_id, account_id, secret_sha256, name) VALUES ($1, $2, $3, $4)
RETURNING created_at
"""
_FIND = "SELECT account_id, secret_sha256, name, revoked_at FROM api_tokens WHERE token_id = $1"
_LIST = """
SELECT token_id, account_id, name, created_at, revoked_at, last_used_at FROM api_tokens
WHERE ($1::text IS NULL OR account_id = $1::text) ORDER BY account_id, created_at, token_id
"""
_REVOKE = """
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = $1
RETURNING account_id, name, revoked_at
"""
_USED = """
UPDATE api_tokens SET last_used_at = now()
WHERE token_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token's row as authentication needs it (the hash, never a secret)."""

    token_id: str
    account_id: str
    secret_sha256: bytes
    name: str
    revoked: bool


class TokenStore:
    """Token rows, through the Store's pool and its error translation."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, token_id: str, account_id: str, secret_sha256: bytes, name: str) -> str:
        """Insert a token; returns its creation time (canonical UTC)."""
        async with self._store.connection() as conn:
            created: datetime.datetime = await conn.fetchval(
                _INSERT, token_id, account_id, secret_sha256, name
            )
        return format_instant(created)

    async def find(self, token_id: str) -> StoredToken | None:
        async with self._store.connection() as conn:
            row = await conn.fetchrow(_FIND, token_id)
        if row is None:
            return None
        return StoredToken(
            token_id,
            row["account_id"],
            bytes(row["secret_sha256"]),
            row["name"],
            row["revoked_at"] is not None,
        )

    async def list(self, account_id: str | None = None) -> list[dict[str, Any]]:
        async with self._store.connection() as conn:
            rows = await conn.fetch(_LIST, account_id)
        return [
            {
                "token_id": row["token_id"],
                "account": row["account_id"],
                "name": row["name"],
                "created_at": format_instant(row["created_at"]),
                "revoked_at": _instant(row["revoked_at"]),
                "last_used_at": _instant(row["last_used_at"]),
            }
            for row in rows
        ]

    async def revoke(self, token_id: str) -> dict[str, Any] | None:
        """Revoke a token (again: a no-op keeping the first time); None when there is no such id."""
        async with self._store.connection() as conn:
            row = await conn.fetchrow(_REVOKE, token_id)
        if row is None:
            return None
        return {
            "token_id": token_id,
            "account": row["account_id"],
            "name": row["name"],
            "revoked_at": format_instant(row["revoked_at"]),
        }

    async def touch(self, token_id: str) -> None:
        """Record a use (at most one write a minute per token: not a write per request)."""
        async with self._store.connection() as conn:
            await conn.execute(_USED, token_id)


def _instant(value: datetime.datetime | None) -> str | None:
    return None if value is None else format_instant(value)
