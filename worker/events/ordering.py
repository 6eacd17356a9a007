"""Last-writer-wins: the one ordering rule the projector and every sender view apply.

A subscriber's STOP and START can reach us on different partitions, in either order, and a
record can be processed twice after a crash. Ordering each block identity's events by
``(occurred_at, action rank, event_id)`` makes the final state the same whatever the arrival
order or duplication. On an exact tie of ``occurred_at`` a block beats an unblock: when in doubt,
do not message the subscriber. ``event_id`` breaks the rest deterministically.
"""

from __future__ import annotations

from collections.abc import Iterable

from worker.model import Action, ChangeEvent

ACTION_RANK = {Action.UNBLOCK: 0, Action.BLOCK: 1}


def version(event: ChangeEvent) -> tuple[str, int, str]:
    """Sort key; ``occurred_at`` is canonical UTC text, so text order is time order."""
    return (event.occurred_at, ACTION_RANK[event.action], event.event_id)


def latest_per_block(events: Iterable[tuple[bytes, ChangeEvent]]) -> dict[bytes, ChangeEvent]:
    """The winning event per block key: a batch collapses to one upsert row per identity."""
    winners: dict[bytes, ChangeEvent] = {}
    for key, event in events:
        current = winners.get(key)
        if current is None or version(event) > version(current):
            winners[key] = event
    return winners
