"""Fetch the projector's latest snapshot over HTTP into a local snapshot directory.

For a send service on another host: ``fetch_latest("http://projector:9465", cache_dir)`` makes
``cache_dir`` look exactly like the projector's own snapshot directory (same layout, same
``latest`` pointer, same verification on load), so :class:`worker.sender.view.BlocklistView` and batch
senders read it the same way. Conditional on the ETag: an unchanged snapshot costs one 304.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from worker.constants import SNAPSHOT_URL_PREFIX
from worker.errors import ServiceUnavailableError, SnapshotError
from worker.snapshot.manifest import MANIFEST, DataFile, Manifest, is_snapshot_id
from worker.snapshot.publish import publish, staging_dir
from worker.snapshot.reader import latest_id, read_manifest

_CHUNK = 1024 * 1024


def fetch_latest(
    base_url: str, directory: Path, *, keep: int = 3, timeout: float = 60.0, token: str | None = None
) -> Manifest | None:
    """Download the latest snapshot unless ``directory`` already has it; None when unchanged.

    ``token``: the projector's OPTOUT_SNAPSHOT_TOKEN, sent as ``Authorization: Bearer``.

    Blocking (urllib): call it from a thread in async code. Raises ServiceUnavailableError when
    the projector cannot be reached and SnapshotError when what arrived does not verify.
    """
    base = base_url.rstrip("/") + SNAPSHOT_URL_PREFIX
    current = latest_id(directory)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    headers = dict(auth)
    if current is not None:
        with contextlib.suppress(SnapshotError):  # a broken local copy: fetch unconditionally
            headers["If-None-Match"] = f'"{read_manifest(directory / current).sha256}"'
    raw = _get(f"{base}/latest/{MANIFEST}", headers, timeout)
    if raw is None:
        return None
    manifest = Manifest.from_json(raw, f"{base}/latest/{MANIFEST}")
    if not is_snapshot_id(manifest.id):
        raise SnapshotError(f"{base}: bad snapshot id {manifest.id!r}")
    if (directory / manifest.id).is_dir():
        return None
    staging = staging_dir(directory, f"fetch-{manifest.id}")
    try:
        for data in (manifest.active, manifest.unblocked):
            _download(f"{base}/{manifest.id}/{data.name}", staging / data.name, data, timeout, auth)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, directory, manifest.id, raw, keep)
    return manifest


def _get(url: str, headers: dict[str, str], timeout: float) -> bytes | None:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as error:
        error.close()  # it holds the response (and its socket) open
        if error.code == 304:
            return None
        if error.code == 401:
            raise ServiceUnavailableError(
                f"{url}: HTTP 401: the projector wants a bearer token (its OPTOUT_SNAPSHOT_TOKEN)"
            ) from None
        raise ServiceUnavailableError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ServiceUnavailableError(f"{url}: {getattr(error, 'reason', error)}") from None


def _download(url: str, path: Path, data: DataFile, timeout: float, headers: dict[str, str]) -> None:
    """Stream to disk, checking size and sha256 as it comes: a bad download never lands."""
    digest = hashlib.sha256()
    size = 0
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, path.open("wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError) as error:
        raise ServiceUnavailableError(f"{url}: {getattr(error, 'reason', error)}") from None
    if size != data.bytes or digest.hexdigest() != data.sha256:
        raise SnapshotError(
            f"{url}: {size} bytes with sha256 {digest.hexdigest()[:12]}…, manifest says otherwise"
        )
