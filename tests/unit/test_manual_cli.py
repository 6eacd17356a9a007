"""``optout block|unblock|import --dry-run`` in-process: what the operator sees, without a broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from worker.cli import main
from worker.events.schemas import CHANGE, validator


def test_a_dry_run_block_prints_the_event_it_would_produce(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["block", " +15551230001 ", "--account", "acme", "--subaccount", "north", "--channel", "sms"]
    at = ["--note", "ticket 4711", "--at", "2026-12-01T11:00:00+01:00", "--dry-run"]
    assert main([*argv, *at]) == 0
    out = capsys.readouterr()
    event = orjson.loads(out.out)
    assert list(validator(CHANGE).iter_errors(event)) == []
    assert (event["address"], event["scope"]["level"], event["occurred_at"]) == (
        "+15551230001",
        "subaccount",
        "2026-12-01T10:00:00.000000Z",
    )
    assert (event["reason"], event["note"], event["source"]) == ("manual", "ticket 4711", None)
    assert "would be produced (dry run)" in out.err
    assert main([*argv, *at]) == 0
    assert orjson.loads(capsys.readouterr().out)["event_id"] == event["event_id"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["unblock", "+1", "--account", "a", "--note", "  "], "--note is empty"),
        (["block", "+1", "--account", "a", "--note", "x", "--at", "now"], "--at 'now' is not an RFC 3339"),
        (["block", "+1", "--account", "a", "--channel", "s\tms", "--note", "x"], "--channel contains"),
        (["block", "", "--account", "a", "--note", "x"], "ADDRESS is empty"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_subaccount_and_sender_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["block", "+1", "--account", "a", "--subaccount", "s", "--sender", "x", "--note", "n"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_dry_run_import_reports_and_exits_3_on_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Address;Account;Action;Date Added\n+1;acme;;2026\n+2;;unblock;x\n+3;acme;unblock;\n")
    assert main(["import", str(path), "--dry-run", "--note", "provider export"]) == 3
    err = capsys.readouterr().err
    assert f"{path}:3: account is missing" in err
    assert "ignored (unknown) columns: Date Added" in err
    assert "dry run: 2 changes (1 block, 1 unblock) would be produced" in err
    assert "1 line skipped (line 3); exit 3" in err


def test_an_import_without_the_required_columns_is_refused_before_kafka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "phones.csv"
    path.write_text("phone,name\n+1,Ann\n")
    # No --dry-run and no broker: the file is refused first, with one line.
    assert main(["import", str(path), "--kafka-bootstrap", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "needs an address and an account column" in err[0]
