"""Snapshots against the real broker and Postgres: consistent cut, integrity, pruning, HTTP."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.helpers import (
    change,
    change_records,
    env_for,
    expected_state,
    identity,
    produce,
    random_changes,
    read_topic,
    settings_for,
    snapshot,
    spawn,
)
from worker.errors import SnapshotError
from worker.events import schemas
from worker.model import Action
from worker.ops.httpserver import start_http
from worker.sender.view import load_latest
from worker.snapshot.http import PREFIX, snapshot_app
from worker.snapshot.manifest import ACTIVE_FILE, MANIFEST, UNBLOCKED_FILE, Manifest
from worker.snapshot.reader import latest_id, read_manifest, snapshot_ids, verified_lines
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


def lines_of(path: Path, data: Any) -> set[tuple[str, ...]]:
    result: set[tuple[str, ...]] = set()
    for line in verified_lines(path, data):
        doc = orjson.loads(line)
        schemas.validator(schemas.SNAPSHOT_ENTRY).validate(doc)
        result.add(
            (
                doc["address"],
                doc["account_id"],
                doc["level"],
                doc["subaccount_id"] or "",
                doc["sender"] or "",
                doc["channel"],
                doc["occurred_at"],
                doc["event_id"],
            )
        )
    return result


async def test_a_snapshot_is_exactly_the_state_at_its_offsets_while_changes_keep_arriving(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))
    rng = random.Random(7)
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(settings, database_url, stop=stop))
    manifests: list[Manifest] = []
    try:
        for round_ in range(6):
            await produce(broker, topics.changes, change_records(random_changes(rng, 400, round_ * 400)))
            await asyncio.sleep(0.3)  # let the projector be mid-stream, not idle
            manifests.append(await snapshot(settings, database_url))
    finally:
        stop.set()
        await projector
    records = await read_topic(broker, topics.changes)
    highwater = {
        p: 1 + max(r.offset for r in records if r.partition == p) for p in {r.partition for r in records}
    }
    mid_stream = [m for m in manifests if m.offsets != highwater]
    assert mid_stream, "every snapshot was taken after the projector had caught up: nothing was tested"
    assert any(m.count for m in manifests)
    for manifest in manifests:
        before = [r for r in records if r.offset < manifest.offsets.get(r.partition, 0)]
        state = expected_state(before).values()
        path = tmp_path / manifest.id
        assert lines_of(path, manifest.active) == {identity(e) for e in state if e.action is Action.BLOCK}
        assert lines_of(path, manifest.unblocked) == {
            identity(e) for e in state if e.action is Action.UNBLOCK
        }
        assert manifest.count == sum(e.action is Action.BLOCK for e in state)
        schemas.validator(schemas.MANIFEST).validate(orjson.loads((path / MANIFEST).read_bytes()))


async def test_a_truncated_or_tampered_snapshot_is_refused_and_the_previous_one_used(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path, caplog: Any
) -> None:
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))
    await produce(broker, topics.changes, change_records([change("+1", "block"), change("+2", "block")]))
    await run_projector(settings, database_url, burst=True)
    good = await snapshot(settings, database_url)
    await produce(broker, topics.changes, change_records([change("+3", "block")]))
    await run_projector(settings, database_url, burst=True)
    newest = await snapshot(settings, database_url)
    assert latest_id(tmp_path) == newest.id
    assert newest.count == 3
    data = tmp_path / newest.id / ACTIVE_FILE
    original = data.read_bytes()

    data.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(SnapshotError, match="truncated"):
        list(verified_lines(tmp_path / newest.id, newest.active))
    index, used = load_latest(tmp_path, topics.changes)
    assert used is not None
    assert used.id == good.id
    assert index.blocks == 2
    assert f"refusing snapshot {newest.id}" in caplog.text

    # Same size, one byte changed, and still a valid gzip stream: only the checksum can tell.
    payload = gzip.decompress(original).replace(b"+3", b"+4")
    tampered = gzip.compress(payload, compresslevel=1, mtime=0)
    data.write_bytes(tampered)
    with pytest.raises(SnapshotError, match="does not match its manifest"):
        list(verified_lines(tmp_path / newest.id, newest.active))
    assert load_latest(tmp_path, topics.changes)[1] == good

    (tmp_path / newest.id / MANIFEST).write_bytes(b'{"version": 1}')
    with pytest.raises(SnapshotError, match="manifest invalid"):
        read_manifest(tmp_path / newest.id)
    data.write_bytes(original)
    (tmp_path / good.id / UNBLOCKED_FILE).unlink()
    index, used = load_latest(tmp_path, topics.changes)
    assert used is None, "no snapshot is good: the view replays the topic instead"
    assert index.blocks == 0


async def test_old_snapshots_are_pruned_and_dead_writers_staging_removed(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path), OPTOUT_SNAPSHOT_KEEP="2"
    )
    dead = tmp_path / ".tmp-999999999-1.0"  # no such pid
    dead.mkdir()
    written = [await snapshot(settings, database_url) for _ in range(4)]
    assert snapshot_ids(tmp_path) == [written[3].id, written[2].id]
    assert latest_id(tmp_path) == written[3].id
    assert not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([written[2].id, written[3].id, "latest"])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def test_http_serves_the_latest_snapshot_with_a_working_etag(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))
    http = start_http(
        CollectorRegistry(), "127.0.0.1", 0, lambda: (True, b"{}"), {PREFIX + "/": snapshot_app(tmp_path)}
    )
    base = f"http://127.0.0.1:{http.port}{PREFIX}"
    try:
        status, _, _ = await asyncio.to_thread(_get, base + "/latest")
        assert status == 404
        await produce(broker, topics.changes, change_records([change("+1", "block")]))
        await run_projector(settings, database_url, burst=True)
        first = await snapshot(settings, database_url)

        status, headers, body = await asyncio.to_thread(_get, base + "/latest")
        assert status == 200
        assert headers["ETag"] == f'"{first.sha256}"'
        assert hashlib.sha256(body).hexdigest() == first.sha256
        assert headers["X-Optout-Snapshot"] == first.id
        assert gzip.decompress(body).count(b"\n") == first.count == 1

        status, _, body = await asyncio.to_thread(
            _get, base + "/latest", {"If-None-Match": f'"{first.sha256}"'}
        )
        assert (status, body) == (304, b"")
        status, _, body = await asyncio.to_thread(_get, base + "/latest/manifest.json")
        assert status == 200
        assert Manifest.from_json(body, "http") == first

        await produce(broker, topics.changes, change_records([change("+2", "block")]))
        await run_projector(settings, database_url, burst=True)
        second = await snapshot(settings, database_url)
        status, headers, body = await asyncio.to_thread(
            _get, base + "/latest", {"If-None-Match": f'"{first.sha256}"'}
        )
        assert status == 200
        assert headers["ETag"] == f'"{second.sha256}"' != f'"{first.sha256}"'
        status, _, body = await asyncio.to_thread(_get, f"{base}/{first.id}/{ACTIVE_FILE}")
        assert status == 200
        assert hashlib.sha256(body).hexdigest() == first.sha256
        status, _, body = await asyncio.to_thread(_get, base)
        assert orjson.loads(body) == {"latest": second.id, "snapshots": [second.id, first.id]}
        for bad in (
            "/../../etc/passwd",
            f"/{first.id}/../../x",
            "/latest/nope",
            "/20991231T000000.000000Z/manifest.json",
        ):
            status, _, _ = await asyncio.to_thread(_get, base + bad)
            assert status == 404, bad
    finally:
        http.stop()


async def test_the_projector_writes_snapshots_on_its_interval(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path), OPTOUT_SNAPSHOT_INTERVAL="1"
    )
    await produce(broker, topics.changes, change_records([change("+1", "block")]))
    stop = asyncio.Event()
    registry = CollectorRegistry()
    projector = asyncio.create_task(run_projector(settings, database_url, registry=registry, stop=stop))
    try:
        for _ in range(100):
            if len(snapshot_ids(tmp_path)) >= 2 and read_manifest(tmp_path / latest_id(tmp_path)).count == 1:  # type: ignore[operator]
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await projector
    assert len(snapshot_ids(tmp_path)) >= 2
    assert (registry.get_sample_value("optout_snapshot_last_success_timestamp_seconds") or 0) > 0
    assert registry.get_sample_value("optout_snapshot_entries") == 1


async def test_optout_snapshot_command(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    env = env_for(broker, topics, group_suffix, database_url) | {"OPTOUT_SNAPSHOT_DIR": str(tmp_path / "s")}
    child = spawn("snapshot", env, tmp_path / "out.log")
    assert await asyncio.to_thread(child.wait, 60) == 0
    output = (tmp_path / "out.log").read_bytes()
    summary = orjson.loads(output[output.index(b"{\n") :])
    assert summary["manifest"]["count"] == 0
    assert Path(summary["path"]).parent == tmp_path / "s"
    assert os.readlink(tmp_path / "s" / "latest") == summary["manifest"]["id"]


async def test_after_a_restart_the_last_success_gauge_starts_from_the_newest_snapshot_on_disk(
    database_url: str, tmp_path: Path
) -> None:
    from datetime import datetime

    from worker.config import Settings
    from worker.ops.metrics import ProjectorMetrics
    from worker.snapshot.schedule import snapshot_every, take_snapshot
    from worker.store.postgres import Store

    settings = Settings.from_mapping(
        {"OPTOUT_SNAPSHOT_DIR": str(tmp_path), "OPTOUT_SNAPSHOT_INTERVAL": "3600"}
    )
    async with await Store.connect(database_url, min_size=1, max_size=1) as store:
        written = await take_snapshot(settings, store)
        registry = CollectorRegistry()
        stop = asyncio.Event()
        task = asyncio.create_task(snapshot_every(settings, store, ProjectorMetrics(registry), stop))
        await asyncio.sleep(0.3)
        stop.set()
        await task
    created = datetime.fromisoformat(written.manifest.created_at).timestamp()
    assert registry.get_sample_value("optout_snapshot_last_success_timestamp_seconds") == created
    assert snapshot_ids(tmp_path) == [written.manifest.id]  # recent enough: none written at start
