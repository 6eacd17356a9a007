"""``/snapshots`` on the projector's HTTP port, so a send service on another host can fetch them.

* ``GET /snapshots/latest`` — the latest active-blocks file (``blocks.ndjson.gz``), ETag = the
  manifest's sha256; ``If-None-Match`` with that ETag answers 304. ``X-Optout-Snapshot`` names the
  snapshot id and ``Link`` its manifest.
* ``GET /snapshots/latest/manifest.json`` — the latest manifest, same ETag.
* ``GET /snapshots/<id>/<file>`` — any file of a kept snapshot; immutable, so cacheable forever.
* ``GET /snapshots`` — ``{"latest": id, "snapshots": [ids, newest first]}``.

With ``OPTOUT_SNAPSHOT_TOKEN`` (or ``_FILE``) set, every request needs ``Authorization: Bearer
<token>``; without it the answer is 401. The snapshots list every blocked address: set one
whenever the port is reachable from outside the machine.

A client that needs the manifest and the data of the same snapshot reads the manifest from
``/snapshots/latest/manifest.json`` and then fetches ``/snapshots/<id>/...``: ``latest`` can
move between two requests, a snapshot directory never changes.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from worker.constants import SNAPSHOT_URL_PREFIX
from worker.errors import SnapshotError
from worker.ops.httpserver import StartResponse, WSGIApp
from worker.snapshot.manifest import ACTIVE_FILE, MANIFEST, UNBLOCKED_FILE, is_snapshot_id
from worker.snapshot.reader import latest_id, read_manifest, snapshot_ids

PREFIX = SNAPSHOT_URL_PREFIX
_FILES = {MANIFEST: "application/json", ACTIVE_FILE: "application/gzip", UNBLOCKED_FILE: "application/gzip"}
_CHUNK = 256 * 1024


def snapshot_app(directory: Path, token: str | None = None) -> WSGIApp:
    """``token``: when set, every request needs ``Authorization: Bearer <token>`` (else 401)."""
    expected = f"Bearer {token}".encode() if token else None

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if expected is not None and not hmac.compare_digest(
            environ.get("HTTP_AUTHORIZATION", "").encode(), expected
        ):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("WWW-Authenticate", 'Bearer realm="snapshots"'),
                ],
            )
            return [b"a bearer token is required: Authorization: Bearer <OPTOUT_SNAPSHOT_TOKEN>\n"]
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "GET or HEAD\n")
        parts = [p for p in environ.get("PATH_INFO", "").removeprefix(PREFIX).split("/") if p]
        if not parts:
            ids = snapshot_ids(directory)
            body = orjson.dumps({"latest": latest_id(directory), "snapshots": ids})
            start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-cache")])
            return [body]
        latest = parts[0] == "latest"
        snapshot = latest_id(directory) if latest else parts[0]
        if snapshot is None:
            return _plain(start_response, "404 Not Found", "no snapshot written yet\n")
        name = parts[1] if len(parts) == 2 else ACTIVE_FILE if latest and len(parts) == 1 else None
        if not is_snapshot_id(snapshot) or name not in _FILES or len(parts) > 2:
            return _plain(start_response, "404 Not Found", "no such snapshot file\n")
        try:
            manifest = read_manifest(directory / snapshot)
        except SnapshotError:
            return _plain(start_response, "404 Not Found", f"snapshot {snapshot} is gone or unreadable\n")
        etag = f'"{manifest.sha256}"' if name != UNBLOCKED_FILE else f'"{manifest.unblocked.sha256}"'
        headers = [
            ("ETag", etag),
            ("X-Optout-Snapshot", snapshot),
            ("Link", f'<{PREFIX}/{snapshot}/{MANIFEST}>; rel="describedby"'),
            ("Cache-Control", "no-cache" if latest else "public, max-age=31536000, immutable"),
        ]
        if etag in _etags(environ.get("HTTP_IF_NONE_MATCH", "")):
            start_response("304 Not Modified", headers)
            return []
        path = directory / snapshot / name
        try:
            file = path.open("rb")
        except OSError:
            return _plain(start_response, "404 Not Found", f"snapshot {snapshot} was pruned\n")
        size = path.stat().st_size
        start_response("200 OK", [("Content-Type", _FILES[name]), ("Content-Length", str(size)), *headers])
        if environ.get("REQUEST_METHOD") == "HEAD":
            file.close()
            return []
        return _stream(file)

    return app


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _stream(file: Any) -> Iterator[bytes]:
    with file:
        while chunk := file.read(_CHUNK):
            yield chunk


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]
