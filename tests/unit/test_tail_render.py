"""`optout tail changes`: a marketing-only block reads differently from a full one."""

from __future__ import annotations

from typing import Any

from worker.ops.tail import render


def _change(category: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "occurred_at": "2026-11-24T12:00:00.000000Z",
        "action": "block",
        "address": "+15550000001",
        "scope": {"level": "account", "account_id": "acme", "channel": "sms"},
        "keyword": "STOP MARKETING",
        "rule": "stop_marketing",
    }
    if category is not None:
        event["category"] = category
    return event


def test_a_marketing_block_says_so_and_a_full_one_does_not() -> None:
    assert "on sms, marketing only  keyword" in render("changes", _change("marketing"), None, "p0@1")
    for category in ("all", None):  # None: an event from before categories
        line = render("changes", _change(category), None, "p0@1")
        assert "marketing only" not in line
        assert "on sms  keyword 'STOP MARKETING'" in line
