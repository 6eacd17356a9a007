"""Versioned schema migrations: ``worker/store/migrations/NNNN_name.sql``, applied in version order.

Every projector runs :func:`migrate` at start, so several can run it at once against one database
(a rolling deploy, a scaled-up deployment). A transaction-scoped advisory lock serializes them and
each one re-checks what is applied after taking it; transaction-scoped rather than session-scoped
so it can never leak across a pooler (PgBouncer) that hands the connection to someone else.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import re
from dataclasses import dataclass

import asyncpg

from worker.errors import ConfigError
from worker.store.postgres import connect_once, translate_errors

#: pg_advisory_xact_lock key shared by every optout-worker migrating this database (advisory
#: locks are per database, so other databases on the server are unaffected). Arbitrary but fixed:
#: the bytes of "optoutmg".
MIGRATION_LOCK = 0x6F70_746F_7574_6D67

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    """The file name without ``.sql``, e.g. ``0001_init``."""
    sql: str


def discover() -> list[Migration]:
    """The packaged migrations in version order; a clash of versions is a packaging bug."""
    found: dict[int, Migration] = {}
    for entry in importlib.resources.files("worker.store.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        version = int(match.group(1))
        name = entry.name.removesuffix(".sql")
        if version in found:
            raise ConfigError(f"two migrations have version {version}: {found[version].name} and {name}")
        found[version] = Migration(version, name, entry.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


async def migrate(dsn: str) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return the names applied.

    Idempotent: a second run, or a run racing another process, applies nothing twice.
    """
    migrations = discover()
    conn = await connect_once(dsn)
    try:
        with translate_errors(dsn):
            return await _apply_pending(conn, migrations)
    finally:
        with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await conn.close(timeout=5)


async def _apply_pending(conn: asyncpg.Connection[asyncpg.Record], migrations: list[Migration]) -> list[str]:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_BOOTSTRAP)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    applied: list[str] = []
    for migration in migrations:
        if migration.version in done:
            continue
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            # Another process may have applied it while we waited for the lock.
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version):
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        applied.append(migration.name)
    return applied
