"""One confirmation per opt-out (CTIA): what the classifier must remember to not confirm a STOP twice.

A subscriber who sends STOP twice gets one confirmation, not two: a STOP whose block is already
active (the same block identity: scope, address, category) gets no reply within
``OPTOUT_CONFIRMATION_WINDOW`` seconds of the block it repeats. The change event is still emitted
(history records every request); only the reply is dropped (``optout_replies_suppressed_total``).

**Where the knowledge lives.** In the compacted change topic, which already holds every block
identity's latest change with its ``occurred_at``. The classifier tails it
(:mod:`worker.stream.recent`) into :class:`RecentChanges`, a map from the change topic's *record
key* (the block identity, byte for byte what :func:`worker.classify.decide.decide_encoded` builds)
to that identity's latest two versions. Only changes of the last window matter (an older block is
confirmed again anyway), so the map is pruned to about two windows: its size is the rate of
keyword MOs times the window, not the size of the blocklist. The alternatives, weighed:

* the send services' :class:`~worker.sender.BlocklistView` itself: the same topic, but the whole
  blocklist in every classifier (1.2 GB and a 40 s load at 10M blocks) and keyed by a scope tuple
  without the category; the window's changes keyed by record key are a small fraction and need no
  mapping from key to scope;
* a local map only: lost on a restart or a rebalance, exactly when a subscriber's second STOP
  (sent because the first confirmation was slow) is likeliest to be reprocessed;
* a Postgres lookup per keyword MO: a database in the hot loop, and the projector's lag in the
  answer;
* the projector sending confirmations: a database transaction added to every confirmation's
  latency, and the reply path tied to Postgres being up.

Blocks the classifier emitted itself reach the map before the tail sees them: each batch collects
its own changes in a pending overlay (``BatchOutput.recent``) that later records of the same batch
see, merged into the map once the batch's output is durable (acknowledged, or its transaction
committed) and dropped if it is not (an aborted transaction's blocks never happened).

**The rule** (:meth:`RecentChanges.repeated`): a STOP at ``t`` is not confirmed when, among the
changes of its block identity other than its own event,

* the latest one older than it is a block made by a subscriber's message (``source`` set: not a
  manual, import or API block, which the subscriber was never asked to confirm) at most
  ``window`` before ``t``; or
* one is newer than it: the STOP arrived late (after a later STOP, or after the START that lifted
  it: a confirmation now would be stale or false), or it is being reprocessed.

It depends only on the message and the changes around it, not on when it is processed, so a batch
reprocessed after a crash decides as before: in exactly-once mode the aborted output is invisible
(read_committed) and the state is the one before the batch; in at-least-once mode the batch's own
changes are there, its own event is skipped, and an earlier STOP of the same block is still the
previous version. What it costs: keyword MOs only (a dict lookup and, for opt-outs and opt-ins, an
event id and a timestamp parsed per change); chat never reaches it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Known = tuple[str, int, str, bool]
"""A change the classifier knows of: ``(occurred_at, 1 for a block else 0, event_id, mo_block)``.

Compared as a tuple, its first three fields are :func:`worker.events.ordering.version`, the
last-writer-wins order (``occurred_at`` is canonical UTC text, so text order is time order); equal
means the same event, as ``mo_block`` (a block made by a subscriber's message, ``source`` set: the
kind a confirmation answered) follows from the event. A plain tuple: the batch step builds one per
change of every keyword MO, and no time is parsed unless a window has to be measured."""

Entry = tuple[Known, Known | None]
"""A block identity's latest known change and the one before it (by version)."""


def micros_of(occurred_at: str) -> int:
    """A canonical RFC 3339 timestamp as microseconds since the epoch."""
    return (datetime.fromisoformat(occurred_at) - _EPOCH) // _MICROSECOND


def merged(entry: Entry | None, change: Known) -> Entry:
    """``entry`` with ``change`` applied: the latest two versions (the same change twice is one)."""
    if entry is None:
        return (change, None)
    latest, previous = entry
    if change > latest:
        return (change, latest)
    if change == latest:
        return entry
    if previous is None or change > previous:
        return (latest, change)
    return entry


class RecentChanges:
    """Per block identity (change-topic record key), its latest two changes of about the last two
    windows; see the module docstring. Pure: the tail and the batch step feed it."""

    def __init__(self, window_seconds: int) -> None:
        if window_seconds <= 0:
            raise ValueError("a confirmation window of 0 means no memory: do not build one")
        self.window = window_seconds * 1_000_000
        self._entries: dict[bytes, Entry] = {}
        self._newest = ""
        """The newest ``occurred_at`` seen: pruning follows the data's time, not the clock."""
        self._prune_at = _PRUNE_MIN

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def get(self, key: bytes) -> Entry | None:
        return self._entries.get(key)

    def apply(self, key: bytes, change: Known) -> None:
        entries = self._entries
        entries[key] = merged(entries.get(key), change)
        if change[0] > self._newest:
            self._newest = change[0]
        if len(entries) >= self._prune_at:
            self.prune()

    def apply_record(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply a change-topic record; False (and nothing applied) if it is not a change event.

        Reads only what the rule needs (action, occurred_at, event_id, whether it has a source):
        the projector validates and dead-letters malformed events, the classifier just skips them.
        """
        change = known_change(value)
        if key is None or change is None:
            return False
        self.apply(key, change)
        return True

    def merge(self, pending: dict[bytes, Entry]) -> None:
        """A durable batch's own changes (its pending overlay) into the map."""
        for key, (latest, previous) in pending.items():
            if previous is not None:
                self.apply(key, previous)
            self.apply(key, latest)

    def prune(self) -> None:
        """Forget identities whose latest change is more than two windows older than the newest
        change seen; then wait until the map has doubled before looking again (amortized O(1))."""
        if self._newest:
            horizon = micros_of(self._newest) - 2 * self.window
            entries = self._entries
            for key in [k for k, (latest, _) in entries.items() if micros_of(latest[0]) < horizon]:
                del entries[key]
        self._prune_at = max(_PRUNE_MIN, 2 * len(self._entries))

    def repeated(self, key: bytes, own: Known, pending: dict[bytes, Entry]) -> bool:
        """Whether the opt-out whose change event is ``own`` repeats a known block (no
        confirmation). ``pending``: the batch's own changes so far, not yet in the map."""
        entry = pending.get(key)
        stored = self._entries.get(key)
        if entry is None:
            entry = stored
        elif stored is not None:  # both: the batch's changes on top of the map's
            entry = merged(entry, stored[0])
            if stored[1] is not None:
                entry = merged(entry, stored[1])
        if entry is None:
            return False
        latest, previous = entry
        if latest > own:
            return True  # a newer change exists: a late or reprocessed STOP
        before = previous if latest == own else latest
        if before is None or not (before[1] and before[3]):
            return False
        return micros_of(own[0]) - micros_of(before[0]) <= self.window


#: Below this many identities the map is never pruned (a prune walks the whole map).
_PRUNE_MIN = 65_536


def known_change(value: bytes | None) -> Known | None:
    """The parts of an encoded change event the rule needs, or None if it is not one."""
    if not value:
        return None
    try:
        doc: Any = orjson.loads(value)
        action, occurred_at, event_id = doc["action"], doc["occurred_at"], doc["event_id"]
        if action not in ("block", "unblock") or type(event_id) is not str:
            return None
        micros_of(occurred_at)  # a timestamp, or ValueError/TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    blocked = action == "block"
    return (occurred_at, 1 if blocked else 0, event_id, blocked and doc.get("source") is not None)
