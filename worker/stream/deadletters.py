"""Dead letters in the log: one warning per batch with the count per code, never one per record
(a burst of bad input must not become a wall of log lines; each record's detail is on the
dead-letter topic, readable with ``optout tail dead-letters``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from worker.errors import DeadLetterCode


def log_dead_letters(logger: logging.Logger, by_code: Mapping[DeadLetterCode, int], what: str) -> None:
    """``dead-lettered 3 inbound records (invalid_json: 2, missing_field: 1)``; the counts are also
    the ``dead_letters`` field of a JSON log line."""
    counts = {code.value: count for code, count in sorted(by_code.items())}
    logger.warning(
        "dead-lettered %d %s (%s)",
        sum(counts.values()),
        what,
        ", ".join(f"{code}: {count}" for code, count in counts.items()),
        extra={"dead_letters": counts},
    )
