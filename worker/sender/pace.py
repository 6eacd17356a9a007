"""How long a change-topic tail's fetches wait: briefly while someone waits for it to be current.

A tail knows it is current only from fetch responses (``end_offsets()`` is wrong on Tansu), so a
wait for it (:meth:`worker.sender.BlocklistView.wait_current`, the classifier's
:meth:`worker.stream.recent.RecentTail.catch_up`) needs two responses to fetches sent after the
call. On a quiet topic each response is the broker waiting out the fetch wait (100 ms) for bytes
that do not come, so every such wait took 100-200 ms; at 5 ms it takes about 10-20 (measured per
caller, see there). The short wait holds only while someone waits: kept for a whole run, the fetch
round trips it costs an idle tail cost the classifier 4-9% of its throughput.

aiokafka has no setter for either value; its fetcher reads both from its own attributes each time
round, and where the fetcher is not the one this was written for they stay as built (a slower
wait, nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FetchPace:
    """How long a tail's fetches may wait at the broker, and how long its fetch routine (aiokafka's
    ``consumer_timeout_ms``) sleeps when it finds nothing to fetch."""

    wait_ms: int
    idle_seconds: float


#: While a wait for the tail to be current is due or running. At aiokafka's 200 ms idle, one tail
#: start in three or four had its first fetch go out 200 ms after the seek (the routine had looked
#: before the position was set, and slept).
CATCHING_UP = FetchPace(wait_ms=5, idle_seconds=0.01)


def set_fetch_pace(consumer: Any, pace: FetchPace) -> None:
    """Set ``consumer``'s :class:`FetchPace` from its next fetch on (both values, or neither)."""
    if fetch_pace(consumer) is not None:
        consumer._fetcher._fetch_max_wait_ms = pace.wait_ms
        consumer._fetcher._fetcher_timeout = pace.idle_seconds


def fetch_pace(consumer: Any) -> FetchPace | None:
    """``consumer``'s pace as built (started: its fetcher exists), or None if it cannot be read."""
    fetcher = getattr(consumer, "_fetcher", None)
    wait, idle = getattr(fetcher, "_fetch_max_wait_ms", None), getattr(fetcher, "_fetcher_timeout", None)
    if isinstance(wait, int) and isinstance(idle, float):
        return FetchPace(wait, idle)
    return None
