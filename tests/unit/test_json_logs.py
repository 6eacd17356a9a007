"""OPTOUT_LOG_FORMAT=json: one JSON object per line, time in UTC with its zone."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime

import orjson
import pytest

from worker.config import Settings
from worker.logs import JsonFormatter, configure


def test_a_record_is_one_json_object_with_time_level_logger_event_and_fields() -> None:
    record = logging.LogRecord(
        "optout.classifier", logging.WARNING, __file__, 1, "dead-lettered %d", (3,), None
    )
    record.codes = {"invalid_json": 2, "missing_field": 1}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "optout.classifier"
    assert entry["event"] == "dead-lettered 3"
    assert entry["codes"] == {"invalid_json": 2, "missing_field": 1}
    assert entry["time"].endswith("Z")
    assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_an_exception_stays_inside_the_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in orjson.loads(line)["exception"]


def test_text_is_the_default_and_json_is_chosen_by_the_setting() -> None:
    assert Settings.from_mapping({}).log_format == "text"
    assert Settings.from_mapping({"OPTOUT_LOG_FORMAT": "json"}).log_format == "json"


def test_configure_json_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("INFO", "json")
        logging.getLogger("optout.test").info("hello %s", "world")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    entry = orjson.loads(capsys.readouterr().err.strip())
    assert entry["event"] == "hello world"


def test_a_command_logs_json_when_asked() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "classify"],
        input=b"",
        env={"OPTOUT_LOG_FORMAT": "json", "OPTOUT_TYPO": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    entry = orjson.loads(result.stderr.splitlines()[0])
    assert entry["level"] == "WARNING"
    assert entry["event"].startswith("OPTOUT_TYPO is not an optout setting")
