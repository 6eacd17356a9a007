"""Each bad setting: one line that names the setting and its value (never a password), and a
warning for an ``OPTOUT_*`` variable that no setting reads."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from worker.cli import _listen_error
from worker.config import Settings, unknown_variables
from worker.errors import ConfigError


def _error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OPTOUT_METRICS_PORT", "abc", "a TCP port 0-65535"),
        ("OPTOUT_PARTITIONS", "six", "a whole number >= 1"),
        ("OPTOUT_SNAPSHOT_INTERVAL", "1h", "a whole number of seconds >= 0"),
    ],
)
def test_a_number_that_is_not_one_says_what_was_expected(name: str, value: str, expected: str) -> None:
    message = _error({name: value})
    assert name in message
    assert repr(value) in message
    assert expected in message
    assert "invalid literal" not in message


def test_a_missing_ca_file_is_named_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    message = _error({"OPTOUT_KAFKA_SECURITY_PROTOCOL": "SSL", "OPTOUT_KAFKA_SSL_CAFILE": str(missing)})
    assert "OPTOUT_KAFKA_SSL_CAFILE" in message
    assert str(missing) in message
    missing.write_text("pem")
    tls = {"OPTOUT_KAFKA_SECURITY_PROTOCOL": "SSL", "OPTOUT_KAFKA_SSL_CAFILE": str(missing)}
    assert Settings.from_mapping(tls).ssl_cafile == str(missing)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://optout:s3cret@db/optout",
        "postgresql//optout:s3cret@db/optout",
        "postgres:optout:s3cret@db/optout",
        "optout:s3cret@db/optout",
        "mysql://optout:s3c/ret@db/optout",
    ],
)
def test_a_wrong_scheme_database_url_never_shows_the_password(url: str) -> None:
    message = _error({"OPTOUT_DATABASE_URL": url})
    assert "OPTOUT_DATABASE_URL" in message
    assert "s3c" not in message


def test_a_host_that_does_not_resolve_is_blamed_on_the_host_setting() -> None:
    message = _listen_error("no.such.host", 9464, socket.gaierror(-2, "Name or service not known"))
    assert message.startswith("OPTOUT_METRICS_HOST=no.such.host:")
    busy = _listen_error("0.0.0.0", 9464, OSError(errno.EADDRINUSE, "Address already in use"))
    assert busy.startswith("OPTOUT_METRICS_PORT=9464:")


def test_a_misspelled_variable_gets_a_warning_with_the_closest_name() -> None:
    env = {"OPTOUT_DATABSE_URL": "x", "OPTOUT_LOG_LEVEL": "INFO", "PATH": "/bin", "OPTOUT_ZZZ": "1"}
    warnings = unknown_variables(env)
    assert warnings == [
        "OPTOUT_DATABSE_URL is not an optout setting and is ignored; did you mean OPTOUT_DATABASE_URL?",
        "OPTOUT_ZZZ is not an optout setting and is ignored",
    ]
