"""worker.sender.view.BlocklistView against the real broker and Postgres."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.helpers import (
    change,
    change_records,
    connection,
    on_partitions,
    produce,
    random_changes,
    recreate_topic,
    settings_for,
    snapshot,
)
from worker.errors import ServiceUnavailableError
from worker.ops.httpserver import start_http
from worker.sender.pace import CATCHING_UP
from worker.sender.view import BlocklistView
from worker.snapshot.fetch import fetch_latest
from worker.snapshot.http import PREFIX, snapshot_app
from worker.snapshot.manifest import ACTIVE_FILE
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

_ACTIVE_ROWS = """
SELECT address, account_id, level, subaccount_id, sender, channel FROM blocklist_state WHERE active
"""


async def postgres_blocks(database_url: str) -> set[tuple[str, str, str, str, str]]:
    async with connection(database_url) as conn:
        rows = await conn.fetch(_ACTIVE_ROWS)
    return {
        (r["address"], r["account_id"], r["level"], r["subaccount_id"] or r["sender"], r["channel"])
        for r in rows
    }


def view_blocks(view: BlocklistView) -> set[tuple[str, str, str, str, str]]:
    return {(b.address, b.account_id, b.level, b.scope_id, b.channel) for b in view.index.active_blocks()}


async def test_a_view_from_snapshot_plus_tail_equals_postgres_after_the_stream_drains(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))
    rng = random.Random(11)
    old_stop = change("+19990000001", "block", at="2026-11-24T12:00:05.000000Z")
    newer_start = change("+19990000001", "unblock", at="2026-11-24T12:00:10.000000Z")
    await produce(broker, topics.changes, change_records([old_stop, newer_start, *random_changes(rng, 1500)]))
    await run_projector(settings, database_url, burst=True)
    manifest = await snapshot(settings, database_url)

    # After the cut: more changes, and the old STOP again (a classifier batch reprocessed after a
    # crash). Postgres ignores it; a view that did not know the START's version would block.
    await produce(broker, topics.changes, change_records([*random_changes(rng, 1500, 1500), old_stop]))
    await run_projector(settings, database_url, burst=True)

    view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=tmp_path)
    try:
        assert view.manifest == manifest
        assert await view.wait_current(30)
        expected = await postgres_blocks(database_url)
        assert len(expected) > 100
        assert view_blocks(view) == expected
        assert not view.is_blocked("+19990000001", "acme", channel="sms")
        some = sorted(expected)[0]
        address, account, level, scope_id, channel = some
        assert view.is_blocked(
            address,
            account,
            subaccount=scope_id if level == "subaccount" else None,
            sender=scope_id if level == "sender" else None,
            channel="sms" if channel == "*" else channel,
        )
        lag = view.lag()
        assert lag.records == 0
        assert lag.snapshot == manifest.id
        assert lag.blocks == len(expected)
        assert 0 < lag.applied < 3100, "the view read only the tail, not the whole topic"
    finally:
        await view.close()


async def test_a_live_stop_reaches_the_view_and_lag_is_reported(
    broker: str, topics: Topics, group_suffix: str, tmp_path: Path
) -> None:
    """No snapshot at all: the view replays the compacted topic, then follows it live."""
    await produce(
        broker, topics.changes, change_records([change("+1", "block", level="sender", scope_id="12345")])
    )
    view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=tmp_path / "none")
    try:
        assert await view.wait_current(30)
        assert view.lag().snapshot is None
        assert view.is_blocked("+1", "acme", sender="12345")
        assert not view.is_blocked("+1", "acme", sender="999")
        await produce(broker, topics.changes, change_records([change("+2", "block", channel="*")]))
        for _ in range(100):
            if view.is_blocked("+2", "acme", channel="whatsapp"):
                break
            await asyncio.sleep(0.05)
        assert view.is_blocked("+2", "acme", channel="whatsapp")
        await produce(
            broker,
            topics.changes,
            change_records([change("+2", "unblock", at="2026-11-24T13:00:00.000000Z", channel="*")]),
        )
        assert await view.wait_current(30)
        assert not view.is_blocked("+2", "acme", channel="whatsapp")
        assert view.lag().records == 0
        assert view.lag().blocks == 1
    finally:
        await view.close()


async def test_the_view_fetches_at_the_short_wait_only_while_someone_waits_for_it(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    """Opening the view and each wait_current: fetches wait 5 ms at the broker (not the configured
    fetch_max_wait_ms) and the fetch routine idles 10 ms; once the wait is over, the configured
    pace is back. The view is current and right either way."""
    await produce(broker, topics.changes, change_records([change("+1", "block", channel="*")]))
    view = await BlocklistView.open(
        broker, topic=topics.changes, snapshot_dir=tmp_path / "none", fetch_max_wait_ms=250
    )
    try:
        fetcher = view._consumer._fetcher
        assert fetcher._fetch_max_wait_ms == CATCHING_UP.wait_ms  # opening
        assert fetcher._fetcher_timeout == CATCHING_UP.idle_seconds
        assert await view.wait_current(30)
        assert (fetcher._fetch_max_wait_ms, fetcher._fetcher_timeout) == (250, 0.2)  # as configured
        assert view.is_blocked("+1", "acme", channel="sms")
        waiting = asyncio.ensure_future(view.wait_current(30))
        await asyncio.sleep(0)
        assert fetcher._fetch_max_wait_ms == CATCHING_UP.wait_ms  # while a wait runs
        assert await waiting
        assert fetcher._fetch_max_wait_ms == 250
    finally:
        await view.close()


async def test_a_remote_view_fetches_the_snapshot_over_http(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    served, cache = tmp_path / "projector", tmp_path / "sender"
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(served))
    await produce(broker, topics.changes, change_records([change("+1", "block"), change("+2", "block")]))
    await run_projector(settings, database_url, burst=True)
    manifest = await snapshot(settings, database_url)
    http = start_http(
        CollectorRegistry(), "127.0.0.1", 0, lambda: (True, b"{}"), {PREFIX + "/": snapshot_app(served)}
    )
    url = f"http://127.0.0.1:{http.port}"
    try:
        fetched = await asyncio.to_thread(fetch_latest, url, cache)
        assert fetched == manifest
        assert await asyncio.to_thread(fetch_latest, url, cache) is None, "unchanged: a 304, nothing written"
        assert (cache / manifest.id / ACTIVE_FILE).read_bytes() == (
            served / manifest.id / ACTIVE_FILE
        ).read_bytes()
        view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=cache, snapshot_url=url)
        try:
            assert view.manifest == manifest
            assert view.lag().blocks == 2
            assert view.is_blocked("+2", "acme")
        finally:
            await view.close()
    finally:
        http.stop()
    with pytest.raises(ServiceUnavailableError):
        fetch_latest(url, cache, timeout=2)


async def test_a_view_seeded_from_a_snapshot_of_a_recreated_topic_replays_it(
    broker: str,
    topics: Topics,
    group_suffix: str,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The defect of issue 9: ``make run`` restarted (new topics, old snapshots on disk), or a change
    topic deleted and created again. The snapshot's offsets (40 per partition) belong to the old
    incarnation: partitions 1-3 now end at 5, before them; partition 0 has grown to 45, past them, so
    seeking there would skip 40 new records without any sign. Postgres keeps its state (the
    projector forgets its offsets, as ``optout dev`` does, or finds them past the end) and replays
    the new topic; the view must do the same rather than report itself current."""
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))
    old = [change(f"+1555100{i:04d}", "block") for i in range(160)]
    await produce(broker, topics.changes, on_partitions(old, [i % 4 for i in range(160)]))
    await run_projector(settings, database_url, burst=True)
    manifest = await snapshot(settings, database_url)
    assert dict(manifest.offsets) == {0: 40, 1: 40, 2: 40, 3: 40}

    await recreate_topic(broker, topics.changes)
    new = [change(f"+1555200{i:04d}", "block") for i in range(60)]
    await produce(broker, topics.changes, on_partitions(new, [0] * 45 + [1, 2, 3] * 5))
    await run_projector(settings, database_url, burst=True)  # finds its stored offsets untrustworthy
    expected = await postgres_blocks(database_url)
    assert {b[0] for b in expected} >= {e.address for e in new}, "Postgres has every new STOP"
    assert len(expected) == 220

    view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=tmp_path)
    try:
        assert view.manifest == manifest
        assert await view.wait_current(30)
        assert view_blocks(view) == expected
        assert view.lag().records == 0
    finally:
        await view.close()
    assert "cannot be trusted" in caplog.text


async def test_snapshots_protected_by_a_token_answer_401_without_it_and_200_with_it(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    import urllib.error
    import urllib.request

    served, cache = tmp_path / "projector", tmp_path / "sender"
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(served))
    await produce(broker, topics.changes, change_records([change("+1", "block")]))
    await run_projector(settings, database_url, burst=True)
    manifest = await snapshot(settings, database_url)
    token = "s3cret-token"
    http = start_http(
        CollectorRegistry(),
        "127.0.0.1",
        0,
        lambda: (True, b"{}"),
        {PREFIX + "/": snapshot_app(served, token)},
    )
    url = f"http://127.0.0.1:{http.port}"
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            request = urllib.request.Request(f"{url}{PREFIX}/latest", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
            refused.value.close()
            assert refused.value.code == 401
            assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        request = urllib.request.Request(
            f"{url}{PREFIX}/latest", headers={"Authorization": f"Bearer {token}"}
        )
        with await asyncio.to_thread(urllib.request.urlopen, request, timeout=10) as response:
            assert response.status == 200
        with pytest.raises(ServiceUnavailableError, match="401"):
            await asyncio.to_thread(fetch_latest, url, cache)
        assert await asyncio.to_thread(fetch_latest, url, cache, token=token) == manifest
        view = await BlocklistView.open(
            broker,
            topic=topics.changes,
            snapshot_dir=tmp_path / "view",
            snapshot_url=url,
            snapshot_token=token,
        )
        try:
            assert view.manifest == manifest
        finally:
            await view.close()
    finally:
        http.stop()


def test_the_snapshot_token_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    from worker.config import Settings
    from worker.errors import ConfigError

    assert Settings.from_mapping({}).snapshot_bearer_token() is None
    assert Settings.from_mapping({"OPTOUT_SNAPSHOT_TOKEN": "abc"}).snapshot_bearer_token() == "abc"
    (tmp_path / "token").write_text("from-file\n")
    from_file = Settings.from_mapping({"OPTOUT_SNAPSHOT_TOKEN_FILE": str(tmp_path / "token")})
    assert from_file.snapshot_bearer_token() == "from-file"
    assert "from-file" not in repr(from_file)
    assert "abc" not in repr(Settings.from_mapping({"OPTOUT_SNAPSHOT_TOKEN": "abc"}))
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match=r"OPTOUT_SNAPSHOT_TOKEN_FILE=.*empty"):
        Settings.from_mapping({"OPTOUT_SNAPSHOT_TOKEN_FILE": str(tmp_path / "empty")}).snapshot_bearer_token()
