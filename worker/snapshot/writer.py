"""Snapshot writing: a consistent cut of the blocklist, streamed out of Postgres into a snapshot.

A snapshot is a directory named by its id (UTC creation time) holding ``manifest.json`` and two
gzip-compressed JSON-lines files (formats in ``schemas/``). Postgres produces the JSON lines itself
(``COPY ... TO STDOUT``) inside one REPEATABLE READ transaction that also reads the projector's
stored offsets: one MVCC snapshot, so the data is exactly the state at those offsets however fast
the projector keeps writing. The files are staged, then published crash-safely by
:mod:`worker.snapshot.publish`; reading one back is :mod:`worker.snapshot.reader`'s job.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker import __version__
from worker.errors import SnapshotError
from worker.snapshot.manifest import ACTIVE_FILE, UNBLOCKED_FILE, DataFile, Manifest, new_manifest
from worker.snapshot.publish import publish, staging_dir

#: Bytes handed to the compressor (in a thread) at a time: large enough that the thread hop is
#: noise, small enough to keep memory flat at any snapshot size.
_WRITE_CHUNK = 4 * 1024 * 1024

# One JSON object per row, built by Postgres; asyncpg wraps the query in COPY ... TO STDOUT.
# ``category`` (all | marketing, a CHECK constraint) is written on every line so `zcat | jq` needs
# no default; readers take a line without it (a snapshot from before categories) as a full block.
# to_json() escapes every string properly, and the CSV delimiter and quote are control characters
# that JSON text never contains unescaped, so COPY never quotes or escapes the line: what arrives
# is the JSON exactly, one object per line.
_ENTRY_SQL = """
    SELECT '{{"address":' || to_json(address)::text
        || ',"account_id":' || to_json(account_id)::text
        || ',"level":"' || level || '"'
        || ',"subaccount_id":' || COALESCE(to_json(NULLIF(subaccount_id, ''))::text, 'null')
        || ',"sender":' || COALESCE(to_json(NULLIF(sender, ''))::text, 'null')
        || ',"channel":' || to_json(channel)::text
        || ',"occurred_at":"'
        || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
        || ',"event_id":' || to_json(event_id)::text
        || ',"category":"' || category || '"'
        || '}}'
    FROM blocklist_state
    WHERE {where}
    ORDER BY length(address), address COLLATE "C"
"""
_ACTIVE_SQL = _ENTRY_SQL.format(where="active")
_UNBLOCKED_SQL = _ENTRY_SQL.format(where="NOT active")
_COUNTS_SQL = """
SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS unblocked
FROM blocklist_state
"""
_OFFSETS_SQL = "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2"


Progress = Callable[[int, int], None]
"""Called with (entries written so far, entries in the snapshot)."""


def terminal_progress(stream: IO[str] | None = None) -> Progress | None:
    """A one-line progress display when ``stream`` (stderr) is a terminal; None otherwise, so logs
    and CI output never fill with carriage returns."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.2:
            return
        last[0] = now
        share = 100 * done // total if total else 100
        out.write(f"\rsnapshot: {done:,} / {total:,} entries ({share}%)")
        if done >= total:
            out.write("\n")
        out.flush()

    return show


class _HashingFile:
    """The raw file under the gzip stream: counts and hashes exactly the bytes on disk."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


class _EntrySink:
    """Receives COPY output chunks: counts lines, compresses in a worker thread, reports progress."""

    def __init__(self, path: Path, done_before: int, grand_total: int, progress: Progress | None):
        self._raw = path.open("wb")
        self._hashing = _HashingFile(self._raw)
        # mtime=0: the same rows give byte-identical files (and so the same sha256 / ETag).
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, compresslevel=1, mtime=0)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.lines = 0
        self._before, self._grand, self._progress = done_before, grand_total, progress
        self.name = path.name

    async def __call__(self, chunk: bytes) -> None:
        self.lines += chunk.count(b"\n")
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= _WRITE_CHUNK:
            await self._flush()
            if self._progress is not None:
                self._progress(self._before + self.lines, self._grand)

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        await asyncio.to_thread(self._gzip.write, data)

    async def close(self) -> DataFile:
        await self._flush()

        def finish() -> None:
            self._gzip.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()

        await asyncio.to_thread(finish)
        return DataFile(self.name, self.lines, self._hashing.sha256.hexdigest(), self._hashing.size)

    def abandon(self) -> None:
        self._gzip.close()
        self._raw.close()


@dataclass(frozen=True, slots=True)
class WriteResult:
    manifest: Manifest
    path: Path
    seconds: float
    pruned: tuple[str, ...]


async def write_snapshot(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
    directory: Path,
    *,
    topic: str,
    consumer_group: str,
    keep: int,
    progress: Progress | None = None,
) -> WriteResult:
    """Write one snapshot of ``blocklist_state`` at the projector's stored offsets, then prune."""
    started = time.monotonic()
    created = datetime.now(UTC)
    staging = await asyncio.to_thread(staging_dir, directory, f"{created.timestamp():.6f}")
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The sort by address is the one big memory user; let it stay in RAM when it can.
            # Between the two COPYs the data file is synced, which a slow disk may make longer
            # than the store's idle-transaction limit; a read-only transaction blocks no writer.
            await conn.execute(
                "SET LOCAL work_mem = '256MB'; SET LOCAL idle_in_transaction_session_timeout = 0"
            )
            offsets = {
                row["partition"]: row["next_offset"]
                for row in await conn.fetch(_OFFSETS_SQL, consumer_group, topic)
            }
            counts = await conn.fetchrow(_COUNTS_SQL)
            assert counts is not None
            n_active, n_unblocked = counts["active"], counts["unblocked"]
            total = n_active + n_unblocked
            active = await _copy(conn, _ACTIVE_SQL, staging / ACTIVE_FILE, 0, total, progress)
            unblocked = await _copy(conn, _UNBLOCKED_SQL, staging / UNBLOCKED_FILE, n_active, total, progress)
        if (active.count, unblocked.count) != (n_active, n_unblocked):
            raise SnapshotError(
                f"snapshot wrote {active.count}+{unblocked.count} lines for {n_active}+{n_unblocked} rows"
            )
        manifest = new_manifest(
            created, f"optout-worker {__version__}", topic, consumer_group, offsets, active, unblocked
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Off the event loop: fsyncs, renames and deleting old snapshots block for a while on a busy disk.
    pruned = await asyncio.to_thread(publish, staging, directory, manifest.id, manifest.to_json(), keep)
    return WriteResult(manifest, directory / manifest.id, time.monotonic() - started, tuple(pruned))


_NO_TIMEOUT = 24 * 3600.0


async def _copy(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
    sql: str,
    path: Path,
    before: int,
    grand_total: int,
    progress: Progress | None,
) -> DataFile:
    """Stream one COPY into one data file; ``before`` entries of ``grand_total`` are already written."""
    sink = _EntrySink(path, before, grand_total, progress)
    try:
        # No statement timeout: a COPY of ten million blocks takes tens of seconds by design.
        await conn.copy_from_query(
            sql, output=sink, format="csv", delimiter="\x02", quote="\x01", timeout=_NO_TIMEOUT
        )
    except BaseException:
        sink.abandon()
        raise
    data = await sink.close()
    if progress is not None:
        progress(before + data.count, grand_total)
    return data
