"""Session-wide test set-up shared by unit and integration tests.

Every pytest run gets a private base temporary directory under ``$TMPDIR`` (``/tmp``), removed at
the end, instead of pytest's default ``/tmp/pytest-of-<user>/pytest-<N>``: pytest prunes all but
the last three of those, so on a shared machine a second pytest run (another checkout, a
benchmark) would delete the embedded Postgres of a run still in progress. ``--basetemp`` given on
the command line is respected.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

_PRIVATE: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        private = tempfile.mkdtemp(prefix="optout-pytest-")
        _PRIVATE.append(private)
        config.option.basetemp = f"{private}/tmp"


def pytest_unconfigure(config: pytest.Config) -> None:
    for private in _PRIVATE:
        shutil.rmtree(private, ignore_errors=True)
