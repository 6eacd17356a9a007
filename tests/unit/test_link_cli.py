"""``optout link`` in-process: the link it prints, and one-line errors naming the setting or flag."""

from __future__ import annotations

import time

import pytest

from worker.classify.links import LinkSecret, decode
from worker.cli import main
from worker.model import Category, ScopeLevel

SECRET = "a-link-secret-of-at-least-32-bytes!!"


def test_the_printed_link_decodes_to_the_block_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTOUT_LINK_SECRET", SECRET)
    monkeypatch.setenv("OPTOUT_LINK_BASE_URL", "https://u.example.com/")
    argv = ["link", "whatsapp:+44 7700 900123", "--account", "acme", "--subaccount", "north"]
    assert main([*argv, "--category", "marketing", "--ttl", "2h"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://u.example.com/u/")
    link = decode(url.rsplit("/", 1)[1], LinkSecret(SECRET.encode()), int(time.time()))
    scope = link.change.scope
    assert (link.change.address, scope.level, scope.subaccount_id, scope.channel) == (
        "+447700900123",
        ScopeLevel.SUBACCOUNT,
        "north",
        "*",
    )
    assert link.change.category is Category.MARKETING
    assert 7000 < link.expires_at - time.time() <= 7200


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({}, [], "OPTOUT_LINK_SECRET is not set"),
        ({"OPTOUT_LINK_SECRET": "short"}, [], "OPTOUT_LINK_SECRET / --link-secret = *** (from"),
        ({"OPTOUT_LINK_SECRET": SECRET}, [], "OPTOUT_LINK_BASE_URL is not set"),
        ({"OPTOUT_LINK_SECRET": SECRET}, ["--base-url", "ftp://x"], "--base-url 'ftp://x': expected"),
        (
            {"OPTOUT_LINK_SECRET": SECRET, "OPTOUT_LINK_BASE_URL": "https://u.x"},
            ["--ttl", "5y"],
            "--ttl '5y'",
        ),
        (
            {"OPTOUT_LINK_SECRET": SECRET, "OPTOUT_LINK_BASE_URL": "https://u.x"},
            ["--channel", "s\tms"],
            "--channel",
        ),
    ],
)
def test_errors_are_one_line_naming_what_to_fix(
    env: dict[str, str],
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("OPTOUT_LINK_SECRET", "OPTOUT_LINK_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["link", "+447700900123", "--account", "acme", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "short" not in err
