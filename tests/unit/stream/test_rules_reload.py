"""worker.stream.rules_reload: the rules file reloaded on SIGHUP or when it changes, validated first."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from worker.classify.decide import classify
from worker.classify.rulesfile import load_rules
from worker.ops.metrics import ClassifierMetrics
from worker.stream.rules_reload import RulesReloader, digest


def _rules(*keywords: str) -> bytes:
    return orjson.dumps(
        {"version": 1, "rules": [{"name": "custom", "intent": "opt_out", "keywords": list(keywords)}]}
    )


def _write(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    stat = path.stat()  # a new mtime even within the file system's timestamp granularity
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _opts_out(reloader: RulesReloader, text: str) -> bool:
    match = classify(text, reloader.current.resolve("acme", None, "12345"))
    return match is not None and match.rule.name == "custom"


@pytest.fixture
def metrics() -> ClassifierMetrics:
    return ClassifierMetrics(CollectorRegistry())


def _sample(metrics: ClassifierMetrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_changed_file_is_loaded_at_the_next_poll(tmp_path: Path, metrics: ClassifierMetrics) -> None:
    path = tmp_path / "rules.json"
    _write(path, _rules("HALT"))
    reloader = RulesReloader(str(path), load_rules(path), metrics, interval=0)
    assert _opts_out(reloader, "halt")
    assert not _opts_out(reloader, "desist")
    assert not await reloader.poll()  # unchanged: nothing to do
    _write(path, _rules("HALT", "DESIST"))
    assert await reloader.poll()
    assert _opts_out(reloader, "desist")
    assert reloader.digest == digest(path.read_bytes())
    assert _sample(metrics, "optout_rules_reloads_total", {"result": "ok"}) == 1
    assert _sample(metrics, "optout_rules_info", {"sha256": reloader.digest}) == 1


async def test_nothing_is_read_before_the_interval_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    _write(path, _rules("HALT"))
    reloader = RulesReloader(str(path), load_rules(path), interval=3600)
    _write(path, _rules("DESIST"))
    assert not await reloader.poll()
    reloader.request()  # SIGHUP
    assert await reloader.poll()
    assert _opts_out(reloader, "desist")


async def test_a_bad_file_keeps_the_old_rules_with_one_line(
    tmp_path: Path, metrics: ClassifierMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.json"
    _write(path, _rules("HALT"))
    reloader = RulesReloader(str(path), load_rules(path), metrics, interval=0)
    before = reloader.current, reloader.digest
    for broken in (b'{"version": 1, ', orjson.dumps({"version": 1, "rules": [{"name": "x"}]})):
        caplog.clear()
        _write(path, broken)
        with caplog.at_level(logging.ERROR, "optout.classifier"):
            assert not await reloader.poll()
        assert (reloader.current, reloader.digest) == before
        [line] = [r.getMessage() for r in caplog.records]
        assert "\n" not in line
        assert line.startswith(
            f"rules not reloaded (the file changed), keeping sha256 {before[1]}: rules file "
        )
    assert _sample(metrics, "optout_rules_reloads_total", {"result": "rejected"}) == 2
    assert _sample(metrics, "optout_rules_info", {"sha256": before[1]}) == 1
    assert not await reloader.poll()  # the same bad file is not read again
    _write(path, _rules("DESIST"))
    assert await reloader.poll()
    assert _opts_out(reloader, "desist")


async def test_a_missing_file_keeps_the_rules(tmp_path: Path, metrics: ClassifierMetrics) -> None:
    path = tmp_path / "rules.json"
    _write(path, _rules("HALT"))
    reloader = RulesReloader(str(path), load_rules(path), metrics, interval=0)
    path.unlink()
    assert not await reloader.poll()
    assert _opts_out(reloader, "halt")
    assert _sample(metrics, "optout_rules_reloads_total", {"result": "rejected"}) == 1


async def test_a_touched_file_with_the_same_content_is_not_recompiled(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    _write(path, _rules("HALT"))
    reloader = RulesReloader(str(path), load_rules(path), interval=0)
    current = reloader.current
    _write(path, _rules("HALT"))
    assert not await reloader.poll()
    assert reloader.current is current


async def test_without_a_rules_file_sighup_changes_nothing(
    metrics: ClassifierMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    reloader = RulesReloader("", load_rules(None), metrics, interval=0)
    reloader.request()
    with caplog.at_level(logging.INFO, "optout.classifier"):
        assert not await reloader.poll()
    assert "no rules file to reload" in caplog.text
    assert _sample(metrics, "optout_rules_info", {"sha256": "builtin"}) == 1
