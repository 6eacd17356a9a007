"""optout-worker: an open STOP/START/HELP engine for messaging platforms.

Pure (no I/O): ``classify`` (where STOP is decided) and ``events`` (the formats). The library send
services embed: ``sender``. I/O shells: ``stream`` (the Kafka loops), ``store`` (Postgres),
``snapshot``, ``ops`` (metrics, HTTP), ``dev`` (the embedded stack) and ``cli``.
``tests/unit/test_boundaries.py`` holds the packages to that.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("optout-worker")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
