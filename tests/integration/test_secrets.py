"""Passwords set in the settings never reach a log line or an error message, at any log level."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.integration.helpers import change, change_records, env_for, produce
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


def _with_password(url: str) -> tuple[str, str]:
    """``url`` with a password in it (and that password). The embedded Postgres trusts local
    connections, so an invented password still connects; an external URL keeps its own."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    password = f"pw-{uuid.uuid4().hex}"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}")), password


async def test_a_projector_run_at_debug_level_logs_no_password(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    url, db_password = _with_password(database_url)
    sasl_password = f"sasl-{uuid.uuid4().hex}"
    await produce(broker, topics.changes, change_records([change("+15557770001", "block")]))
    env = (
        os.environ
        | env_for(broker, topics, group_suffix, url)
        | {
            "OPTOUT_LOG_LEVEL": "DEBUG",
            "OPTOUT_KAFKA_SASL_PASSWORD": sasl_password,
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "worker", "projector", "--burst"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "projector stopped after 1 records" in output
    assert db_password not in output
    assert sasl_password not in output


def test_an_unreachable_database_is_reported_without_its_password() -> None:
    password = f"pw-{uuid.uuid4().hex}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "check",
            "+15557770002",
            "--account",
            "acme",
            "--log-level",
            "DEBUG",
        ],
        env=os.environ | {"OPTOUT_DATABASE_URL": f"postgresql://optout:{password}@127.0.0.1:1/optout"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 1, output
    assert "postgresql://optout:***@127.0.0.1:1/optout" in output
    assert password not in output
