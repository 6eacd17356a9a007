"""The ``used_links`` table: each opt-out link is confirmed once (migration 0005).

Separate from :class:`worker.store.postgres.Store`'s own queries (the projector's) and written
through its pool: a claim is one ``INSERT ... ON CONFLICT DO NOTHING``, whose row count says
whether this request is the first to confirm the link, atomically, however many clicks race.
"""

from __future__ import annotations

from datetime import datetime

from worker.store.postgres import COMMAND_TIMEOUT, Store, translate_errors

_CLAIM = """
INSERT INTO used_links (link_id, account_id) VALUES ($1, $2)
ON CONFLICT (link_id) DO NOTHING
RETURNING used_at
"""
_RELEASE = "DELETE FROM used_links WHERE link_id = $1 AND used_at = $2"
_USED = "SELECT 1 FROM used_links WHERE link_id = $1"


async def claim_link(store: Store, link_id: str, account_id: str) -> datetime | None:
    """Record ``link_id`` as used; its ``used_at`` if this call did, None if it was used before."""
    with translate_errors(store.dsn):
        used_at: datetime | None = await store.pool.fetchval(
            _CLAIM, link_id, account_id, timeout=COMMAND_TIMEOUT
        )
    return used_at


async def release_link(store: Store, link_id: str, used_at: datetime) -> None:
    """Undo this request's own claim (its block could not be produced), so the subscriber can
    confirm again; a claim of another request (another ``used_at``) is left alone."""
    with translate_errors(store.dsn):
        await store.pool.execute(_RELEASE, link_id, used_at, timeout=COMMAND_TIMEOUT)


async def link_used(store: Store, link_id: str) -> bool:
    with translate_errors(store.dsn):
        return bool(await store.pool.fetchval(_USED, link_id, timeout=COMMAND_TIMEOUT))
