"""A backoff sleep ends when the loop's stop event is set: SIGTERM during an outage stops at once."""

from __future__ import annotations

import asyncio
import logging
import time

from worker.backoff import Backoff, wake_on
from worker.logs import ServiceState


def _backoff(delay: float) -> Backoff:
    return Backoff(ServiceState("Test", logging.getLogger("test.backoff")), logging.getLogger("test"), delay)


async def test_a_stop_request_wakes_a_long_backoff_sleep() -> None:
    stop = asyncio.Event()
    wake_on(stop)
    asyncio.get_running_loop().call_later(0.1, stop.set)
    started = time.monotonic()
    await _backoff(30).failed(OSError("refused"))
    assert time.monotonic() - started < 2


async def test_while_stopping_retries_still_wait_a_little_and_without_a_stop_event_the_full_delay() -> None:
    stop = asyncio.Event()
    stop.set()
    wake_on(stop)
    started = time.monotonic()
    await _backoff(0.3).failed(OSError("refused"))
    assert 0.25 < time.monotonic() - started < 2  # no busy loop while a batch is still delivered

    async def unstoppable() -> float:
        from worker.backoff import _STOP

        _STOP.set(None)
        started = time.monotonic()
        await _backoff(0.3).failed(OSError("refused"))
        return time.monotonic() - started

    assert await asyncio.create_task(unstoppable()) >= 0.29
