"""Reading snapshots back: which exist, which is latest, the manifest, and the entry lines verified.

Checksums, sizes and line counts are checked as the lines stream, so a truncated or modified
snapshot is refused (:class:`SnapshotError`) instead of half-loaded. Files only: no database, no
network; the send-service library (:mod:`worker.sender.view`) reads snapshots through this module.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from worker.errors import SnapshotError
from worker.snapshot.manifest import LATEST, MANIFEST, DataFile, Manifest, is_snapshot_id

_READ_CHUNK = 1024 * 1024


def latest_id(directory: Path) -> str | None:
    try:
        target = os.readlink(directory / LATEST)
    except OSError:
        return None
    return target if is_snapshot_id(target) else None


def snapshot_ids(directory: Path) -> list[str]:
    """Complete snapshots in ``directory``, newest first."""
    try:
        names = [entry.name for entry in directory.iterdir() if entry.is_dir()]
    except FileNotFoundError:
        return []
    return sorted((name for name in names if is_snapshot_id(name)), reverse=True)


def read_manifest(path: Path) -> Manifest:
    where = str(path)
    try:
        raw = (path / MANIFEST).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{where}: cannot read {MANIFEST}: {exc.strerror}") from None
    manifest = Manifest.from_json(raw, where)
    if manifest.id != path.name:
        raise SnapshotError(f"{where}: manifest id {manifest.id} does not match the directory")
    return manifest


def verified_lines(path: Path, data: DataFile) -> Iterator[bytes]:
    """The entry lines of a data file, checked against the manifest as they stream.

    Truncation and corruption surface as :class:`SnapshotError`: mid-stream for a broken gzip
    stream, at the end for a wrong size, checksum or line count. A caller filling an index from
    these lines must throw that index away when the error comes.
    """
    file_path = path / data.name
    digest = hashlib.sha256()
    inflate = zlib.decompressobj(wbits=31)  # gzip framing
    size = lines = 0
    pending = b""
    try:
        with file_path.open("rb") as file:
            while chunk := file.read(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                text = pending + inflate.decompress(chunk)
                parts = text.split(b"\n")
                pending = parts.pop()
                lines += len(parts)
                yield from parts
    except OSError as exc:
        raise SnapshotError(f"{file_path}: cannot read: {exc.strerror or exc}") from None
    except zlib.error as exc:
        raise SnapshotError(f"{file_path}: corrupt gzip data: {exc}") from None
    if size != data.bytes or digest.hexdigest() != data.sha256:
        raise SnapshotError(
            f"{file_path}: does not match its manifest ({size} bytes, sha256 {digest.hexdigest()[:12]}…; "
            f"expected {data.bytes} bytes, sha256 {data.sha256[:12]}…): truncated or modified"
        )
    if not inflate.eof or pending:
        raise SnapshotError(f"{file_path}: gzip stream ends early: truncated")
    if lines != data.count:
        raise SnapshotError(f"{file_path}: {lines} entries, manifest says {data.count}")
