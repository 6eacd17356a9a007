"""Error hierarchy. Whether to retry is data on the class (``retriable``), decided once here.

The loops act on it: an error whose class is ``retriable`` is an outage, waited out with backoff
and retried; any other stops the attempt, and the loop dead-letters the record it names
(:class:`InputError`, :class:`RefusedError`) or stops with one line.

::

    OptoutError
    ├── ConfigError          bad settings or rules file: fail at start with one line (retriable=False)
    ├── InputError           one bad inbound record: dead-letter it, go on (retriable=False)
    │                        carries ``code`` (a DeadLetterCode) and a readable ``detail``
    ├── ServiceUnavailableError   broker or Postgres unreachable: back off and retry (retriable=True)
    ├── RefusedError         Postgres refused a batch's data (a constraint, a value it cannot store):
    │                        find the refused events, dead-letter them, store the rest (retriable=False)
    ├── OutputRefusedError   Kafka refused a record for good (too large, not authorized): retrying
    │                        cannot help; the worker stops with one line (retriable=False)
    └── SnapshotError        a snapshot is missing, truncated or does not match its manifest:
                             refuse it, fall back to an older one (retriable=False)
"""

from __future__ import annotations

from enum import StrEnum


class OptoutError(Exception):
    retriable: bool = False
    """True: the same operation may succeed later (an outage), so the loops back off and retry."""


class ConfigError(OptoutError):
    """A setting or the rules file is wrong; the message is shown to the operator as is."""


class DeadLetterCode(StrEnum):
    EMPTY_VALUE = "empty_value"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    TEXT_TOO_LARGE = "text_too_large"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_CHANGE = "invalid_change"
    REFUSED_BY_DATABASE = "refused_by_database"


class InputError(OptoutError):
    """One record cannot be processed; it goes to the dead-letter topic with this code and detail."""

    def __init__(self, code: DeadLetterCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ServiceUnavailableError(OptoutError):
    retriable = True


class RefusedError(OptoutError):
    """Postgres refused the data itself, not the connection: the same batch would fail again."""


class OutputRefusedError(OptoutError):
    """Kafka refused a record with an error no retry can fix; the message names topic and cause."""


class SnapshotError(OptoutError):
    """A snapshot cannot be trusted; the message names the file and what is wrong with it."""
