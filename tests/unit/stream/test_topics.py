"""``_cleanup_policy`` reads a DescribeConfigs answer: a resource error is retried, never a value.

Right after CreateTopics, Apache Kafka can answer DescribeConfigs with UNKNOWN_TOPIC_OR_PARTITION
(error 3) and no entries; read as "no entry, so the default", that refused a topic just created
compacted, 9 runs in 10.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from worker.errors import ServiceUnavailableError
from worker.stream.kafka import _cleanup_policy


class _Admin:
    """Answers describe_configs with the given resources, one list per call (the last repeats)."""

    def __init__(self, *answers: list[tuple[Any, ...]]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def describe_configs(self, resources: Any) -> list[Any]:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        return [SimpleNamespace(resources=answer)]


UNKNOWN: tuple[Any, ...] = (3, "This server does not host this topic-partition.", 2, "t", [])
COMPACT: tuple[Any, ...] = (0, None, 2, "t", [("cleanup.policy", "compact", False, 1, False, [])])
NO_ENTRY: tuple[Any, ...] = (0, None, 2, "t", [("segment.ms", "604800000", False, 5, False, [])])


async def test_unknown_topic_right_after_creation_is_retried() -> None:
    admin = _Admin([UNKNOWN], [UNKNOWN], [COMPACT])
    assert await _cleanup_policy(admin, "t") == "compact"
    assert admin.calls == 3


async def test_a_topic_without_the_entry_has_the_default_policy() -> None:
    assert await _cleanup_policy(_Admin([NO_ENTRY]), "t") == "delete"


async def test_an_error_that_persists_is_an_outage_not_a_policy() -> None:
    with pytest.raises(ServiceUnavailableError, match="error code 3"):
        await _cleanup_policy(_Admin([UNKNOWN]), "t", seconds=0.3)
