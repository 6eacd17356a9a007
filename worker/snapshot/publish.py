"""Publishing and pruning snapshot directories, crash-safely: for written and fetched snapshots alike.

Everything goes into a staging directory, is fsynced, renamed into place, and only then does the
``latest`` symlink move (itself replaced atomically). A reader therefore sees either the previous
complete snapshot or the new complete one, never a half-written file. Files only: no database, no
network, so a send service that mirrors snapshots (:mod:`worker.snapshot.fetch`) shares this code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from worker.snapshot.manifest import LATEST, MANIFEST, to_prune
from worker.snapshot.reader import latest_id, snapshot_ids


def staging_dir(directory: Path, label: str) -> Path:
    """A fresh directory to build a snapshot in, named so :func:`prune` knows its writer's pid."""
    staging = directory / f".tmp-{os.getpid()}-{label}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish(staging: Path, directory: Path, snapshot: str, manifest: bytes, keep: int) -> list[str]:
    """Make a staged snapshot the latest, crash-safely, then prune; returns the pruned ids.

    The manifest goes in last and everything is fsynced before the rename, so a directory named
    like a snapshot is always complete; ``latest`` moves only after that. The staging directory is
    removed if anything fails.
    """
    try:
        _write_durably(staging / MANIFEST, manifest)
        fsync_dir(staging)
        os.rename(staging, directory / snapshot)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(directory)
    point_latest(directory, snapshot)
    return prune(directory, keep)


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point_latest(directory: Path, snapshot: str) -> None:
    """Move the ``latest`` symlink atomically: readers see the old target or the new, never none."""
    temporary = directory / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(snapshot)
    os.replace(temporary, directory / LATEST)
    fsync_dir(directory)


def prune(directory: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` snapshots (never ``latest``'s), and staging directories
    left by a writer that died."""
    doomed = to_prune(snapshot_ids(directory), keep, latest_id(directory))
    for name in doomed:
        shutil.rmtree(directory / name, ignore_errors=True)
    for entry in directory.glob(".tmp-*"):
        pid = entry.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    return doomed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
