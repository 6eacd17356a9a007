"""``--help`` that reads well: a short usage line, settings grouped, only the relevant ones listed."""

from __future__ import annotations

import pytest

from worker.cli import build_parser

COMMANDS = [
    "classifier",
    "projector",
    "classify",
    "tail",
    "check",
    "history",
    "produce",
    "dev",
    "snapshot",
    "topics",
    "migrate",
    "block",
    "unblock",
    "import",
    "api",
    "token",
    "link",
    "dispatcher",
    "webhook",
]


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_is_short_and_settings_are_grouped(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(command, capsys)
    usage = text.split("\n\n")[0]
    assert len(usage.splitlines()) <= 3, usage
    assert "OPTOUT_" not in usage
    assert usage.rstrip().endswith("[SETTINGS]")
    # dev lists every setting (issue 11: the API's, the links' and the eight webhook settings; issue 16:
    # the two of the input fetches, and the produced batch size; stop 37: the transactions' layout,
    # in a "delivery" group with OPTOUT_DELIVERY that only the classifier shows)
    assert len(text.splitlines()) < (215 if command == "dev" else 140)
    assert "(flag, or its OPTOUT_* variable)" in text or command == "dev"


def test_a_one_shot_command_lists_only_its_settings_but_accepts_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help("check", capsys)
    assert "--database-url" in text
    assert "--kafka-bootstrap" not in text
    assert len(text.splitlines()) < 45
    args = build_parser().parse_args(["check", "+1", "--account", "a", "--kafka-bootstrap", "k:9092"])
    assert args.kafka_bootstrap == "k:9092"


def test_the_rules_help_describes_the_built_in_rules(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_help("classifier", capsys).split())
    assert "English rules" not in text
    assert "all 7 language packs" in text
