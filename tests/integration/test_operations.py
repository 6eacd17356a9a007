"""What an operator meets on the first day: errors that name the setting at fault, one-shot
commands that never start servers, health endpoints that tell liveness from readiness."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


def optout(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUT_")}
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        input=stdin.decode(),
        env=clean | (env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unwritable_snapshot_directory_is_named_not_blamed_on_postgres(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    bad = tmp_path / "file" / "snapshots"
    result = optout("snapshot", env={"OPTOUT_DATABASE_URL": database_url, "OPTOUT_SNAPSHOT_DIR": str(bad)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"optout: error: OPTOUT_SNAPSHOT_DIR={bad}: cannot write snapshots there")
    assert "Postgres" not in lines[0]


def test_a_one_shot_command_without_a_database_starts_nothing_and_says_what_to_set(tmp_path: Path) -> None:
    result = optout("check", "+15551230001", "--account", "acme", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "optout: error: OPTOUT_DATABASE_URL is not set and no `optout dev` is running here "
        "(.optout/dev.json not found): set OPTOUT_DATABASE_URL, or start the dev stack with `make run`"
    ]
    assert not (tmp_path / ".optout").exists()


async def test_an_unmigrated_database_says_run_optout_migrate(postgres_url: str) -> None:
    import uuid

    import asyncpg

    from worker.dev.stack import with_database

    name = f"optout_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        for command in (["check", "+1555", "--account", "acme"], ["history", "+1555"]):
            result = optout(*command, env={"OPTOUT_DATABASE_URL": with_database(postgres_url, name)})
            assert result.returncode == 2, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].endswith("has no optout tables: run `optout migrate` first")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _dev(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "dev"],
        env=clean | {"OPTOUT_DATA_DIR": str(tmp_path / "data"), "OPTOUT_METRICS_PORT": "0"} | env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_optout_dev_fails_and_announces_nothing_when_a_worker_cannot_start(
    broker: str, database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev = _dev(
            tmp_path,
            {
                "OPTOUT_KAFKA_BOOTSTRAP": broker,
                "OPTOUT_DATABASE_URL": database_url,
                "OPTOUT_METRICS_PORT": str(port),
                "OPTOUT_TOPIC_INBOUND": f"in.{port}",
                "OPTOUT_TOPIC_CHANGES": f"ch.{port}",
                "OPTOUT_TOPIC_REPLIES": f"re.{port}",
                "OPTOUT_TOPIC_DEAD_LETTER": f"dl.{port}",
                "OPTOUT_GROUP_ID": f"cg.{port}",
                "OPTOUT_PROJECTOR_GROUP_ID": f"pg.{port}",
            },
        )
        _, stderr = dev.communicate(timeout=120)
    assert dev.returncode != 0, stderr
    assert "is running" not in stderr
    # The classifier gets the busy port (the projector the next one, which may be taken too).
    assert "could not start (exit code 2); stopping" in stderr
    assert "cannot listen on 127.0.0.1:" in stderr
    assert not (tmp_path / "data" / "dev.json").exists()


def test_optout_dev_refuses_a_bad_rules_file_before_starting_anything(tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text('{"version": 1, ')
    result = optout("dev", env={"OPTOUT_RULES": "rules.json"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("optout: error: rules file rules.json")
    assert not (tmp_path / ".optout").exists()


def test_sighup_stops_optout_dev_its_workers_broker_and_postgres(tmp_path: Path) -> None:
    import psutil  # type: ignore[import-untyped]

    dev = _dev(tmp_path, {"OPTOUT_SNAPSHOT_INTERVAL": "0"})
    state = tmp_path / "data" / "dev.json"
    pidfile = tmp_path / "data" / "postgres" / "postmaster.pid"
    processes: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert dev.poll() is None, dev.communicate()[1]
            assert time.monotonic() < deadline, "optout dev did not come up"
            time.sleep(0.2)
        found = json.loads(state.read_text())
        assert found["pid"] == dev.pid
        processes = psutil.Process(dev.pid).children()  # the broker and both workers
        assert len(processes) == 3
        processes.append(psutil.Process(int(pidfile.read_text().split()[0])))
        dev.send_signal(signal.SIGHUP)
        _, stderr = dev.communicate(timeout=90)
        assert dev.returncode == 0, stderr
        _, alive = psutil.wait_procs(processes, timeout=20)
        assert alive == [], f"still running after SIGHUP: {alive}"
        assert not state.exists()
        assert not pidfile.exists()
    finally:
        for process in [psutil.Process(dev.pid), *processes] if dev.poll() is None else processes:
            with contextlib.suppress(psutil.Error):
                process.kill()


def test_the_benchmarks_postgres_is_stopped_before_its_directory_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    from worker.dev.stack import postgres_url_for

    monkeypatch.delenv("OPTOUT_DATABASE_URL", raising=False)
    with postgres_url_for(tmp_path / "pg") as url:
        assert url.startswith("postgresql://")
        pid = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(pid)
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _get(url: str) -> tuple[int, dict[str, object]]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _wait_for(url: str, status: int, seconds: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            got, body = _get(url)
        except OSError as exc:
            last = exc
        else:
            if got == status:
                return body
            last = (got, body)
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {status}; last: {last}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_worker_without_kafka_is_live_but_not_ready_and_ready_once_assigned(
    broker: str, tmp_path: Path
) -> None:
    from tests.integration.helpers import REPO

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"OPTOUT_METRICS_PORT": str(port), "OPTOUT_METRICS_HOST": "127.0.0.1"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTOUT_")}
    unreachable = subprocess.Popen(
        [sys.executable, "-m", "worker", "classifier"],
        env=clean | env | {"OPTOUT_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"{base}/livez", 200)
        body = _wait_for(f"{base}/readyz", 503)
        assert "not connected to Kafka yet" in body["reasons"]  # type: ignore[operator]
        assert _get(f"{base}/healthz")[0] == 200
    finally:
        unreachable.terminate()
        unreachable.wait(30)
    suffix = uuid.uuid4().hex[:8]
    topics = {
        "OPTOUT_TOPIC_INBOUND": f"in.{suffix}",
        "OPTOUT_TOPIC_CHANGES": f"ch.{suffix}",
        "OPTOUT_TOPIC_REPLIES": f"re.{suffix}",
        "OPTOUT_TOPIC_DEAD_LETTER": f"dl.{suffix}",
        "OPTOUT_GROUP_ID": f"g.{suffix}",
    }
    assert optout("topics", env={"OPTOUT_KAFKA_BOOTSTRAP": broker} | topics).returncode == 0
    connected = subprocess.Popen(
        [sys.executable, "-m", "worker", "classifier"],
        env=clean | env | topics | {"OPTOUT_KAFKA_BOOTSTRAP": broker},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = _wait_for(f"{base}/readyz", 200, seconds=90)
        assert body["status"] == "ready"
    finally:
        connected.terminate()
        assert connected.wait(30) == 0


async def test_check_exit_status_is_0_not_blocked_1_blocked_2_error(database_url: str) -> None:
    from tests.unit.factories import change_event
    from worker.store.postgres import Store

    async with await Store.connect(database_url, min_size=1, max_size=1) as store:
        await store.apply("g", [change_event("+15550000001", "block")], {("t", 0): 1})
    env = {"OPTOUT_DATABASE_URL": database_url}
    blocked = optout("check", "+15550000001", "--account", "acme", "--exit-status", env=env)
    assert blocked.returncode == 1, blocked.stderr
    assert json.loads(blocked.stdout)["blocked"] is True
    free = optout("check", "+15550000002", "--account", "acme", "--exit-status", env=env)
    assert free.returncode == 0, free.stderr
    unreachable = {"OPTOUT_DATABASE_URL": "postgresql://optout@127.0.0.1:1/optout"}
    assert optout("check", "+1", "--account", "acme", "--exit-status", env=unreachable).returncode == 2
    assert optout("check", "+1", "--account", "acme", env=unreachable).returncode == 1  # unchanged without
    assert optout("check", "+15550000001", "--account", "acme", env=env).returncode == 0


async def test_dead_letters_are_logged_once_per_batch_with_their_codes(
    broker: str, topics: Topics, group_suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from tests.integration.helpers import mo, produce, settings_for
    from worker.stream.classifier import run_classifier

    bad = [(None, b"not json", 0)] * 20 + [(None, b"[1]", 0)] * 3 + [(None, mo("m1", "STOP"), 0)]
    await produce(broker, topics.inbound, bad)
    with caplog.at_level(logging.WARNING, logger="optout.classifier"):
        stats = await run_classifier(settings_for(broker, topics, group_suffix), burst=True)
    assert stats.records == 24
    lines = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(lines) == stats.batches == 1
    assert lines[0].getMessage() == "dead-lettered 23 inbound records (invalid_json: 20, not_an_object: 3)"
    assert lines[0].dead_letters == {"invalid_json": 20, "not_an_object": 3}  # type: ignore[attr-defined]


async def test_optout_tail_prints_changes_replies_and_dead_letters_with_their_reason(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    from tests.integration.helpers import env_for, mo, produce, settings_for
    from worker.stream.classifier import run_classifier

    await produce(broker, topics.inbound, [(None, b"not json", 0), (None, mo("m1", "STOP"), 1)])
    await run_classifier(settings_for(broker, topics, group_suffix), burst=True)
    env = env_for(broker, topics, group_suffix)
    dead = optout("tail", "dead-letters", "--from-beginning", "--limit", "1", env=env)
    assert dead.returncode == 0, dead.stderr
    lines = dead.stdout.splitlines()
    assert "invalid_json  at the classifier:" in lines[0]
    assert f"(from {topics.inbound}[0]@0;" in lines[0]
    assert lines[1] == "    value: 'not json'"
    changes = optout("tail", "changes", "--from-beginning", "--limit", "1", env=env)
    assert changes.returncode == 0, changes.stderr
    assert "BLOCK    +15550000001  account acme on sms  keyword 'STOP'" in changes.stdout
    replies = optout("tail", "replies", "--from-beginning", "--limit", "1", "--json", env=env)
    assert replies.returncode == 0, replies.stderr
    assert json.loads(replies.stdout)["in_reply_to"]
    missing = optout("tail", "changes", env=env | {"OPTOUT_TOPIC_CHANGES": f"nope.{group_suffix}"})
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("does not exist at " + broker)
