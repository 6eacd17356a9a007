"""The snapshot manifest: what a snapshot contains and the change-topic offsets it is a cut at.

Pure: encoding, decoding (validated against ``schemas/snapshot-manifest.v1.json``), ids and the
pruning choice. Writing and reading files is :mod:`worker.snapshot.writer`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.errors import SnapshotError
from worker.events import schemas
from worker.events.inbound import format_instant

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ACTIVE_FILE = "blocks.ndjson.gz"
UNBLOCKED_FILE = "unblocked.ndjson.gz"
LATEST = "latest"

#: Snapshot ids are UTC creation times to the microsecond: they sort by age as text, and name a
#: directory on every file system (no ':').
_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


def snapshot_id(created: datetime) -> str:
    return created.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def is_snapshot_id(name: str) -> bool:
    return _ID.match(name) is not None


@dataclass(frozen=True, slots=True)
class DataFile:
    name: str
    count: int
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    created_at: str
    writer: str
    topic: str
    consumer_group: str
    offsets: Mapping[int, int]
    """Change-topic partition -> next offset: the snapshot holds exactly the effect of every record
    before these offsets. A partition missing here contributed nothing (tail it from its start)."""
    active: DataFile
    """The active blocks: what a batch sender loads."""
    unblocked: DataFile
    """Identities whose latest change is an unblock, with its version: a live view needs them so an
    old STOP replayed after a newer START still loses, as it does in Postgres."""

    @property
    def count(self) -> int:
        return self.active.count

    @property
    def sha256(self) -> str:
        return self.active.sha256

    def document(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (``schemas/snapshot-manifest.v1.json``)."""
        return {
            "version": FORMAT_VERSION,
            "id": self.id,
            "created_at": self.created_at,
            "writer": self.writer,
            "topic": self.topic,
            "consumer_group": self.consumer_group,
            "offsets": [{"partition": p, "offset": o} for p, o in sorted(self.offsets.items())],
            "count": self.active.count,
            "sha256": self.active.sha256,
            "file": self.active.name,
            "bytes": self.active.bytes,
            "unblocked": {
                "file": self.unblocked.name,
                "count": self.unblocked.count,
                "sha256": self.unblocked.sha256,
                "bytes": self.unblocked.bytes,
            },
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.document(), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SnapshotError(f"{where}: manifest is not JSON: {exc}") from None
        errors = sorted(schemas.validator(schemas.MANIFEST).iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            path = "/".join(str(p) for p in first.path) or "(top level)"
            raise SnapshotError(f"{where}: manifest invalid at {path}: {first.message}")
        unblocked = doc["unblocked"]
        return cls(
            id=doc["id"],
            created_at=doc["created_at"],
            writer=doc["writer"],
            topic=doc["topic"],
            consumer_group=doc["consumer_group"],
            offsets={entry["partition"]: entry["offset"] for entry in doc["offsets"]},
            active=DataFile(doc["file"], doc["count"], doc["sha256"], doc["bytes"]),
            unblocked=DataFile(
                unblocked["file"], unblocked["count"], unblocked["sha256"], unblocked["bytes"]
            ),
        )


def new_manifest(
    created: datetime,
    writer: str,
    topic: str,
    consumer_group: str,
    offsets: Mapping[int, int],
    active: DataFile,
    unblocked: DataFile,
) -> Manifest:
    return Manifest(
        snapshot_id(created),
        format_instant(created),
        writer,
        topic,
        consumer_group,
        dict(offsets),
        active,
        unblocked,
    )


def to_prune(ids: Iterable[str], keep: int, latest: str | None) -> list[str]:
    """The snapshots to delete: all but the newest ``keep``, never the one ``latest`` points to."""
    ordered = sorted((i for i in ids if is_snapshot_id(i)), reverse=True)
    return [i for i in ordered[keep:] if i != latest]
