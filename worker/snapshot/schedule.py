"""When snapshots are taken: every ``OPTOUT_SNAPSHOT_INTERVAL`` seconds inside the projector, and
on demand (``optout snapshot``). Both go through :func:`take_snapshot`.

The schedule follows the newest snapshot on disk, not the process's start time: a projector that
restarts every few minutes still writes one per interval, and a fresh one writes one at once.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path

import asyncpg

from worker.config import Settings
from worker.errors import ServiceUnavailableError, SnapshotError
from worker.ops.metrics import ProjectorMetrics
from worker.snapshot.reader import read_manifest, snapshot_ids
from worker.snapshot.writer import Progress, WriteResult, write_snapshot
from worker.store.postgres import COMMAND_TIMEOUT, Store, translate_errors

log = logging.getLogger("optout.snapshot")

#: After a failed snapshot, try again this soon (or at the next interval, if that is sooner).
RETRY_SECONDS = 60.0


def check_writable(directory: Path) -> None:
    """Fail with a line naming OPTOUT_SNAPSHOT_DIR when snapshots cannot be written there, before
    Postgres is asked for anything (whose error handling would call it an outage)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise SnapshotError(
            f"OPTOUT_SNAPSHOT_DIR={directory}: cannot write snapshots there: {exc.strerror or exc}"
        ) from None


async def take_snapshot(settings: Settings, store: Store, progress: Progress | None = None) -> WriteResult:
    check_writable(settings.snapshot_dir)
    with translate_errors(store.dsn):
        async with store.pool.acquire(timeout=COMMAND_TIMEOUT) as conn:  # bounded: see Store
            result = await write_snapshot(
                conn,
                settings.snapshot_dir,
                topic=settings.topic_changes,
                consumer_group=settings.projector_group_id,
                keep=settings.snapshot_keep,
                progress=progress,
            )
    manifest = result.manifest
    log.info(
        "snapshot %s: %d blocks, %d unblocked, %.1f MB in %.1f s%s",
        manifest.id, manifest.count, manifest.unblocked.count,
        (manifest.active.bytes + manifest.unblocked.bytes) / 1e6, result.seconds,
        f"; pruned {len(result.pruned)}" if result.pruned else "",
    )  # fmt: skip
    return result


def newest_snapshot_time(directory: Path) -> float | None:
    """Unix time the newest readable snapshot in ``directory`` was written, or None."""
    for snapshot in snapshot_ids(directory):
        try:
            return datetime.fromisoformat(read_manifest(directory / snapshot).created_at).timestamp()
        except (SnapshotError, ValueError):
            continue
    return None


def seconds_until_due(settings: Settings, now: float) -> float:
    """0 when no snapshot exists or the newest is an interval old; else the time left."""
    created = newest_snapshot_time(settings.snapshot_dir)
    if created is None:
        return 0.0
    return max(0.0, created + settings.snapshot_interval - now)


async def snapshot_every(
    settings: Settings, store: Store, metrics: ProjectorMetrics, stop: asyncio.Event
) -> None:
    """The projector's background task; it never ends the projector, whatever fails.

    The last-success gauge starts from the newest snapshot on disk, so a restart (every deploy)
    does not look like a snapshot that never happened; when none is recent one is written at once.
    """
    newest = newest_snapshot_time(settings.snapshot_dir)
    if newest is not None:
        metrics.snapshot_written.set(newest)
    wait = seconds_until_due(settings, time.time())
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), wait)
            return
        except TimeoutError:
            pass
        try:
            result = await take_snapshot(settings, store)
        except (ServiceUnavailableError, SnapshotError, OSError, asyncpg.PostgresError) as exc:
            metrics.snapshot_failures.inc()
            wait = min(RETRY_SECONDS, float(settings.snapshot_interval))
            log.warning("snapshot failed, next try in %.0f s: %s", wait, exc)
            continue
        metrics.snapshot_written.set(time.time())
        metrics.snapshot_duration.set(result.seconds)
        metrics.snapshot_entries.set(result.manifest.count)
        wait = float(settings.snapshot_interval)
