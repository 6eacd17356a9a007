"""Session-wide test set-up shared by unit and integration tests.

Every pytest run gets a private base temporary directory under ``$TMPDIR`` (``/tmp``), removed at
the end, instead of pytest's default ``/tmp/pytest-of-<user>/pytest-<N>``: pytest prunes all but
the last three of those, so on a shared machine a second pytest run (another checkout, a
benchmark) would delete the embedded Postgres of a run still in progress. ``--basetemp`` given on
the command line is respected.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_PRIVATE: list[str] = []

#: The brokers the integration suite runs on (``--broker`` or ``OPTOUT_TEST_BROKER``; Tansu by default).
BROKERS = ("tansu", "kafka")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=BROKERS,
        default=os.environ.get("OPTOUT_TEST_BROKER") or "tansu",
        help="the broker the integration tests run on: tansu (embedded, default) or kafka "
        "(Apache Kafka from Maven Central jars; needs java). Default: $OPTOUT_TEST_BROKER or tansu.",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        private = tempfile.mkdtemp(prefix="optout-pytest-")
        _PRIVATE.append(private)
        config.option.basetemp = f"{private}/tmp"


def pytest_unconfigure(config: pytest.Config) -> None:
    for private in _PRIVATE:
        shutil.rmtree(private, ignore_errors=True)
