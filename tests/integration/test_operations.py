"""What an operator meets on the first day: errors that name the setting at fault, one-shot
commands that never start servers, health endpoints that tell liveness from readiness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
