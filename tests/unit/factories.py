"""Test doubles shared by the unit tests of pure code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FakeRecord:
    """What :class:`worker.pipeline.RecordLike` needs of a consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
