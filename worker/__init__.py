"""optout-worker: an open STOP/START/HELP engine for messaging platforms.

Pure domain code (no I/O): normalize, rules, scope, classify, inbound, events, ordering, pipeline.
I/O shells: classifier and projector (Kafka loops), store and migrate (Postgres), httpserver,
cli, devstack.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("optout-worker")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
