"""Block categories end to end, on the real broker and Postgres: "STOP MARKETING" blocks marketing
and lets transactional messages through, "STOP" blocks both, in Postgres, in a snapshot, in a live
BlocklistView and in the `optout` command; "START" lifts both and "START MARKETING" only the first."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import mo, produce, settings_for, snapshot
from worker.model import MessageCategory
from worker.sender.view import BlocklistView
from worker.snapshot.manifest import ACTIVE_FILE
from worker.store.postgres import Store
from worker.stream.classifier import run_classifier
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

MARKETING, TRANSACTIONAL = MessageCategory.MARKETING, MessageCategory.TRANSACTIONAL
PROMO_ONLY, EVERYTHING, BOTH = "+15556660001", "+15556660002", "+15556660003"
T0, T1, T2 = "2026-11-24T12:00:00Z", "2026-11-24T12:00:05Z", "2026-11-24T12:00:10Z"


def _optout(database_url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=os.environ | {"OPTOUT_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _categories(store: Store, address: str, category: MessageCategory) -> list[str]:
    """The categories of the blocks that stop a ``category`` message from acme's 12345 on sms."""
    blocks = await store.check(address, "acme", sender="12345", channel="sms", category=category)
    return sorted(block["category"] for block in blocks)


async def test_marketing_and_full_blocks_from_mo_to_postgres_snapshot_and_view(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, topics, group_suffix, OPTOUT_SNAPSHOT_DIR=str(tmp_path))

    async def pipeline() -> None:
        await run_classifier(settings, burst=True)
        await run_projector(settings, database_url, burst=True)

    await produce(
        broker,
        topics.inbound,
        [
            (None, mo("m1", "STOP MARKETING", PROMO_ONLY, received_at=T0), 0),
            (None, mo("m2", "STOP", EVERYTHING, received_at=T0), 1),
            (None, mo("m3", "Stop promos please", BOTH, received_at=T0), 2),
        ],
    )
    await pipeline()

    async with await Store.connect(database_url) as store:
        assert await _categories(store, PROMO_ONLY, MARKETING) == ["marketing"]
        assert await _categories(store, PROMO_ONLY, TRANSACTIONAL) == []
        assert await _categories(store, EVERYTHING, MARKETING) == ["all"]
        assert await _categories(store, EVERYTHING, TRANSACTIONAL) == ["all"]
        assert await _categories(store, BOTH, TRANSACTIONAL) == []

    # The snapshot carries each block's category, and a view loaded from it answers per category.
    manifest = await snapshot(settings, database_url)
    with gzip.open(tmp_path / manifest.id / ACTIVE_FILE) as lines:
        entries = {(e["address"], e["category"]) for e in map(json.loads, lines)}
    assert entries == {(PROMO_ONLY, "marketing"), (EVERYTHING, "all"), (BOTH, "marketing")}

    view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=tmp_path)
    try:
        assert view.manifest == manifest
        assert await view.wait_current(30)
        assert view.lag().applied == 0, "everything came from the snapshot"

        def blocked(address: str, category: MessageCategory) -> bool:
            return view.is_blocked(address, "acme", sender="12345", channel="sms", category=category)

        assert blocked(PROMO_ONLY, MARKETING)
        assert view.is_blocked(PROMO_ONLY, "acme", sender="12345")  # the default: a marketing message
        assert not blocked(PROMO_ONLY, TRANSACTIONAL)
        assert blocked(EVERYTHING, MARKETING)
        assert blocked(EVERYTHING, TRANSACTIONAL)

        # Then, through the tail: START from the first two lifts every block; the third adds a full
        # STOP, then asks for marketing back, which lifts the marketing block and no more.
        await produce(
            broker,
            topics.inbound,
            [
                (None, mo("m4", "START", PROMO_ONLY, received_at=T1), 0),
                (None, mo("m5", "START", EVERYTHING, received_at=T1), 1),
                (None, mo("m6", "STOP", BOTH, received_at=T1), 2),
                (None, mo("m7", "START MARKETING", BOTH, received_at=T2), 2),
            ],
        )
        await pipeline()
        assert await view.wait_current(30)
        assert view.lag().applied > 0
        for address in (PROMO_ONLY, EVERYTHING):
            assert not blocked(address, MARKETING)
            assert not blocked(address, TRANSACTIONAL)
        assert blocked(BOTH, TRANSACTIONAL)
        assert blocked(BOTH, MARKETING)
        assert {b.category for b in view.index.active_blocks() if b.address == BOTH} == {"all"}
    finally:
        await view.close()

    async with await Store.connect(database_url) as store:
        for address in (PROMO_ONLY, EVERYTHING):
            assert await _categories(store, address, MARKETING) == []
        assert await _categories(store, BOTH, TRANSACTIONAL) == ["all"]
        assert await _categories(store, BOTH, MARKETING) == ["all"]

    # The command line: check per message category, history with each change's category.
    args = ("--account", "acme", "--sender", "12345", "--channel", "sms")
    transactional = json.loads(_optout(database_url, "check", BOTH, *args, "--category", "transactional"))
    assert transactional["blocked"] is True
    assert transactional["target"]["category"] == "transactional"
    assert [b["category"] for b in transactional["blocks"]] == ["all"]
    history: list[dict[str, Any]] = [
        json.loads(line) for line in _optout(database_url, "history", BOTH).splitlines()
    ]
    assert [(h["action"], h["category"], h["keyword"]) for h in history if h["action"] == "block"] == [
        ("block", "marketing", "STOP PROMOS"),
        ("block", "all", "STOP"),
    ]
    lifted = [h for h in history if h["action"] == "unblock"]
    assert lifted
    assert {(h["category"], h["keyword"]) for h in lifted} == {("marketing", "START MARKETING")}
    assert all("note" in h and h["note"] is None for h in history)
