"""One confirmation per opt-out (CTIA): what the classifier must remember to not confirm a STOP twice.

A subscriber who sends STOP twice gets one confirmation, not two: a STOP whose block is already
active (the same block identity: scope, address, category) gets no reply within
``OPTOUT_CONFIRMATION_WINDOW`` seconds of the block it repeats. The change event is still emitted
(history records every request); only the reply is dropped (``optout_replies_suppressed_total``).

**Where the knowledge lives.** In the compacted change topic, which already holds every block
identity's latest change with its ``occurred_at``. The classifier tails it
(:mod:`worker.stream.recent`) into :class:`RecentChanges`, a map from the change topic's *record
key* (the block identity, byte for byte what :func:`worker.classify.decide.decide_encoded` builds)
to that identity's last two change events, kept as the bytes read (a dict store per change: every
classifier process reads every change, so nothing is parsed until a STOP asks about that very
identity). The classifier's own events, merged by the batch step, are kept as their facts
(:func:`own_change`: read at fixed positions, in C, not parsed) instead of their bytes: the map
holds every keyword MO's change of two windows, and a ~530-byte event kept alive per entry was
~680 bytes an entry, facts ~360 (tracemalloc, 100,000 entries). In a STOP storm the classifier's
peak RSS went from 186-192 to 150-157 MB and in process, the batch step from 6.5 to 6.0 µs per
MO (the facts are read once, where a repeated STOP parsed the stored events again).
Only changes of the last window matter (an older block is confirmed again anyway), so
the map is pruned to about two windows (by the records' timestamps): its size is the rate of
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
its own changes in a pending overlay (``BatchOutput.pending``) that later records of the same batch
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
previous version. What it costs: keyword MOs only (a dict lookup and a store per change; the
events are parsed only when the identity is known already); chat never reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from worker.constants import SCHEMA_CHANGE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Known = tuple[str, int, str, bool]
"""A change event as the rule reads it: ``(occurred_at, 1 for a block else 0, event_id, mo_block)``.

Compared as a tuple, its first three fields are :func:`worker.events.ordering.version`, the
last-writer-wins order (``occurred_at`` is canonical UTC text, so text order is time order); equal
means the same event, as ``mo_block`` (a block made by a subscriber's message, ``source`` set: the
kind a confirmation answered) follows from the event."""

Pending = dict[bytes, tuple[bytes, bytes | None]]
"""A batch's own change events per block key: the last two, encoded."""

Stored = bytes | Known
"""A change as the map keeps it: the tail's record as read (parsed when a STOP asks), or the facts
of one of the classifier's own events."""


def micros_of(occurred_at: str) -> int:
    """A canonical RFC 3339 timestamp as microseconds since the epoch."""
    return (datetime.fromisoformat(occurred_at) - _EPOCH) // _MICROSECOND


_HEAD = b'{"schema":"' + SCHEMA_CHANGE.encode() + b'","event_id":"'
_TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"  # canonical: format_instant's 27 characters
_LAYOUT = re.compile(
    rb'([ !#-\[\]-~]{32})","action":"(block|unblock)".*(.),"occurred_at":"('
    + _TIME
    + rb')","emitted_at":"'
    + _TIME
    + rb'"}\Z',
    re.DOTALL,
)


def layout_facts(value: bytes, head: bytes) -> Known | None:
    """The facts :func:`known_change` parses, of a change event in the layout the classifier's
    encoders write, read at fixed positions; None when ``value`` is not in that layout.

    :func:`worker.events.outgoing.encode_change` and its twins in :mod:`worker.events.joined`
    write ``head`` (the JSON up to the event id), the id (32 characters, no escapes), the action,
    and last the source, ``occurred_at`` and ``emitted_at``, both times canonical: the source is
    set when the byte before ``,"occurred_at"`` closes its object. The reference for the C twin
    (``change_facts`` in ``worker/events/_joined.c``), which takes ~0.1 µs where a parse takes
    ~2 µs: the batch step reads the facts of every change it emits. Only for the classifier's own
    events; the tail's records come from any writer and are parsed."""
    if not value.startswith(head):
        return None
    found = _LAYOUT.match(value, len(head))
    if found is None:
        return None
    event_id, action, before, occurred = found.groups()
    blocked = action == b"block"
    return (occurred.decode(), 1 if blocked else 0, event_id.decode(), blocked and before == b"}")


change_facts: Callable[[bytes, bytes], Known | None] = layout_facts
try:
    from worker.events import _joined

    change_facts = _joined.change_facts
except ImportError:  # no C compiler at install time: the Python above
    pass


def own_change(value: bytes) -> Known | None:
    """:func:`known_change` of an event the classifier encoded itself: its facts read at fixed
    positions (:func:`layout_facts`), parsed only when it is not in that layout."""
    return change_facts(value, _HEAD) or known_change(value)


def remember(pending: Pending, key: bytes, value: bytes) -> None:
    """Note one of the batch's own change events (the last two per key are kept)."""
    before = pending.get(key)
    pending[key] = (value, None if before is None else before[0])


class RecentChanges:
    """Per block identity (change-topic record key), its last two change events of about the last
    two windows; see the module docstring. Pure: the tail and the batch step feed it."""

    def __init__(self, window_seconds: int) -> None:
        if window_seconds <= 0:
            raise ValueError("a confirmation window of 0 means no memory: do not build one")
        self.window = window_seconds * 1_000_000
        self._entries: dict[bytes, tuple[Stored, Stored | None, int]] = {}
        """key -> (last change, the one before, the last one's record timestamp in ms)."""
        self._newest = 0
        """The newest record timestamp seen (ms): pruning follows the data's time, not the clock."""
        self._prune_at = _PRUNE_MIN
        self._parsed: dict[bytes, Known | None] = {}
        """Change events parsed already, by their bytes (see :meth:`_known`)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def apply_record(self, key: bytes | None, value: bytes | None, timestamp_ms: int) -> None:
        """A change-topic record (its key, value and timestamp), as the tail reads it: stored, not
        parsed; a record read twice (the batch's own event, then the tail's copy) is kept once."""
        if not key or not value:
            return
        self._put(key, value, timestamp_ms)
        if timestamp_ms > self._newest:
            self._newest = timestamp_ms
        if len(self._entries) >= self._prune_at:
            self.prune()

    def merge(self, pending: Pending, timestamp_ms: int) -> None:
        """A batch's own change events (its pending overlay) into the map, as their facts
        (:func:`own_change`; see the module docstring).

        Inlined for the usual case (an identity the map does not hold, one event of it in the
        batch): a STOP storm merges ~100,000 a run, and a call per event was 5% of the
        classifier's busy time (py-spy)."""
        entries, facts, head = self._entries, change_facts, _HEAD
        for key, (latest, previous) in pending.items():
            if previous is None and key not in entries:
                change = facts(latest, head) or known_change(latest)
                if change is not None:
                    entries[key] = (change, None, timestamp_ms)
                continue
            for value in (previous, latest):
                if value is not None and (change := own_change(value)) is not None:
                    self._put(key, change, timestamp_ms)
        if pending and timestamp_ms > self._newest:
            self._newest = timestamp_ms
        if len(entries) >= self._prune_at:
            self.prune()

    def _put(self, key: bytes, change: Stored, timestamp_ms: int) -> None:
        """Store ``change`` as the identity's latest, unless it is one of the two kept already:
        the batch's own event is merged before the tail reads its copy (and the one before it, or
        a late copy would push the newest into second place)."""
        entries = self._entries
        before = entries.get(key)
        if before is None:
            entries[key] = (change, None, timestamp_ms)
        elif not (self._same(change, before[0]) or self._same(change, before[1])):
            entries[key] = (change, before[0], timestamp_ms)

    def _same(self, change: Stored, stored: Stored | None) -> bool:
        """Whether two kept changes are the same event: compared as stored when both are bytes or
        both facts, else by their facts (the tail's copy of an event merged as facts)."""
        if stored is None:
            return False
        if type(change) is type(stored):
            return change == stored
        return self._known(change) == self._known(stored)

    def prune(self) -> None:
        """Forget identities whose last change was written more than two windows before the newest
        one; then wait until the map has doubled before looking again (amortized O(1))."""
        horizon = self._newest - 2 * self.window // 1000
        entries = self._entries
        for key in [k for k, (_, _, written) in entries.items() if written < horizon]:
            del entries[key]
        self._parsed.clear()  # it may hold events of the identities forgotten
        self._prune_at = max(_PRUNE_MIN, 2 * len(entries))

    def confirm(
        self,
        changes: list[tuple[bytes, bytes]],
        first: int,
        replies: list[tuple[bytes, bytes]],
        reply_mark: int,
        opt_out: bool,
        pending: Pending,
    ) -> bool:
        """The batch step's check of one keyword MO, whose change events are ``changes[first:]``
        (appended just now) and whose reply, if it has one, is ``replies[reply_mark]``: drop that
        reply when the MO is an opt-out repeating a known block (:meth:`repeated`; True: dropped),
        then note the MO's changes in ``pending``, the batch's overlay, so the records after it
        see them. An opt-in lifts up to a dozen identities, mostly never blocked: its unblock is
        noted only for an identity already known (a block to lift, or a change it is newer than).

        One method, reading the map directly: before, a function of the batch step called
        ``knows`` per identity and ``__contains__`` per opt-out. In process, 200,000 STOP-storm MOs
        classified in batches of 5,000, three rounds: 5.13-5.15 -> 4.95-5.02 µs per MO."""
        entries = self._entries
        if opt_out:
            if len(changes) == first + 1:
                # The one identity an opt-out blocks, nothing known of it: nearly every STOP.
                key, value = changes[first]
                if key not in pending and key not in entries:
                    pending[key] = (value, None)
                    return False
            new = changes[first:]
            repeated = self.repeated
            dropped = len(replies) > reply_mark and all(
                (key in pending or key in entries) and repeated(key, value, pending) for key, value in new
            )
            if dropped:
                replies.pop()
            for key, value in new:
                remember(pending, key, value)
            return dropped
        for index in range(first, len(changes)):
            key, value = changes[index]
            before = pending.get(key)
            if before is not None:
                pending[key] = (value, before[0])
            elif key in entries:
                pending[key] = (value, None)
        return False

    def repeated(self, key: bytes, own: bytes, pending: Pending) -> bool:
        """Whether the opt-out whose encoded change event is ``own`` repeats a known block (no
        confirmation). ``pending``: the batch's own changes so far, not yet in the map."""
        mine = own_change(own)
        if mine is None:
            return False
        batch = pending.get(key, ())  # the batch's own events: their facts at fixed positions
        others = [
            change for value in batch if value is not None and (change := own_change(value)) is not None
        ]
        stored = self._entries.get(key)
        if stored is not None:
            known = self._known
            others += [
                change for value in stored[:2] if value is not None and (change := known(value)) is not None
            ]
        return decide_repeat(mine, others, self.window)

    def _known(self, value: Stored) -> Known | None:
        """The facts of a kept change (as they are, for the classifier's own); for the tail's
        records, :func:`known_change`, once per event: a subscriber who repeats STOP has the same one or two
        stored events parsed at every repeat, and in a STOP storm (most of its opt-outs repeats of
        a few subscribers') those parses were the bulk of the one-confirmation check: ~10% of the
        classifier's busy time (py-spy). A stored event is the same bytes object each time, whose
        hash Python keeps, so a hit costs a dict lookup. Small on purpose (:data:`_PARSED_MAX`, and
        cleared at every prune): bounded by the map's size instead, it grew with the map, and the
        classifier's memory grew 11% over a 10-minute soak (2% before it)."""
        if type(value) is tuple:
            return value
        assert isinstance(value, bytes)
        parsed = self._parsed
        if value in parsed:
            return parsed[value]
        if len(parsed) >= _PARSED_MAX:
            parsed.clear()
        change = parsed[value] = known_change(value)
        return change


def decide_repeat(own: Known, others: Iterable[Known], window_micros: int) -> bool:
    """The rule, on parsed changes: not confirmed if a change newer than ``own`` is known, or if
    the latest older one is a subscriber's block at most ``window_micros`` before it."""
    before: Known | None = None
    for change in others:
        if change == own:
            continue  # its own event, read back: reprocessing
        if change > own:
            return True  # a newer change exists: a late or reprocessed STOP
        if before is None or change > before:
            before = change
    if before is None or not (before[1] and before[3]):
        return False
    return micros_of(own[0]) - micros_of(before[0]) <= window_micros


#: Below this many identities the map is never pruned (a prune walks the whole map).
_PRUNE_MIN = 65_536
#: At most this many parsed events are kept (:meth:`RecentChanges._known`): about 2.5 MB. The
#: subscribers who repeat STOP most are few; their events stay in it between clears.
_PARSED_MAX = 8_192


def known_change(value: bytes | None) -> Known | None:
    """The parts of an encoded change event the rule needs, or None if it is not one (the
    projector dead-letters malformed events; here they are only ignored)."""
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
