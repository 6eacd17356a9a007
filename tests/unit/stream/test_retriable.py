"""``retriable`` decides retry or not: the projector's store calls back off on errors that say they
are retriable and give up on the others, whatever their class."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from worker.backoff import Backoff
from worker.errors import ConfigError, DeadLetterCode, InputError, OptoutError, ServiceUnavailableError
from worker.ops.metrics import ProjectorMetrics
from worker.store.postgres import ApplyResult
from worker.stream.projector import _apply


class _FlakyError(OptoutError):
    """A retriable error of a class the projector does not name."""

    retriable = True


class _FakeStore:
    """Raises the given errors from apply(), one per call, then succeeds."""

    def __init__(self, errors: Sequence[OptoutError]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def apply(self, group: str, events: Any, offsets: Any) -> ApplyResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ApplyResult(len(events), len(events))


async def _run(store: _FakeStore) -> bool:
    async def no_dead_letters(letters: list[tuple[Any, InputError]]) -> bool:
        raise AssertionError("nothing is refused here")

    backoff = Backoff("Postgres", logging.getLogger("test"), initial=0.001, maximum=0.001)
    metrics = ProjectorMetrics(CollectorRegistry())
    return await _apply(
        store,  # type: ignore[arg-type]
        "group",
        ([], []),
        {("changes", 0): 1},
        backoff,
        metrics,
        asyncio.Event(),
        no_dead_letters,
    )


@pytest.mark.parametrize("error", [ServiceUnavailableError("down"), _FlakyError("blip")])
async def test_a_retriable_error_is_retried_until_the_store_takes_the_batch(error: OptoutError) -> None:
    store = _FakeStore([error, error])
    assert await _run(store) is True
    assert store.calls == 3


@pytest.mark.parametrize(
    "error", [ConfigError("bad password"), InputError(DeadLetterCode.INVALID_CHANGE, "bad")]
)
async def test_an_error_that_is_not_retriable_is_not_retried(error: OptoutError) -> None:
    store = _FakeStore([error])
    with pytest.raises(type(error)):
        await _run(store)
    assert store.calls == 1


def test_only_outages_are_retriable() -> None:
    from worker import errors

    retriable = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, OptoutError) and value.retriable
    }
    assert retriable == {"ServiceUnavailableError"}
