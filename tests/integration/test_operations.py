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
