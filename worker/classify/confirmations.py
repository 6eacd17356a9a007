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
identity). The classifier's own events, noted by the batch step, are kept as their facts
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

Blocks the classifier emitted itself reach the map before the tail sees them: the batch step
notes each keyword MO's changes in the map as it emits them (:meth:`RecentChanges.confirm`), so
the records after it, in the same batch and the next, see them. At-least-once, a batch whose
acknowledgements never come stops the loop (and this memory with it); exactly-once, a failed
transaction is redone, and a fenced one by the partition's new owner, with the same events (same
ids, same times): what the map holds is what the topic will. (Until stop 30 a batch's changes
went into an overlay of their own, merged into the map after the batch: a second dict store and
a walk per change, for a separation that bought nothing, as both modes merged every batch
anyway. Without it, a STOP storm on Tansu ran 82.5-86.7k msgs/s against 79.0-80.3k, three
alternated rounds of ``python -m bench.peers --contenders classifier --mixes storm``.)

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
previous version. What it costs: keyword MOs only (a dict lookup and a store per change, the
classifier's own events read at fixed positions; the tail's records are parsed only when a STOP
asks about their identity); chat never reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from worker.events.outgoing import CHANGE_HEAD

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Known = tuple[str, int, str, bool]
"""A change event as the rule reads it: ``(occurred_at, 1 for a block else 0, event_id, mo_block)``.

Compared as a tuple, its first three fields are :func:`worker.events.ordering.version`, the
last-writer-wins order (``occurred_at`` is canonical UTC text, so text order is time order); equal
means the same event, as ``mo_block`` (a block made by a subscriber's message, ``source`` set: the
kind a confirmation answered) follows from the event."""

Stored = bytes | Known
"""A change as the map keeps it: the tail's record as read (parsed when a STOP asks), or the facts
of one of the classifier's own events."""


def micros_of(occurred_at: str) -> int:
    """A canonical RFC 3339 timestamp as microseconds since the epoch."""
    return (datetime.fromisoformat(occurred_at) - _EPOCH) // _MICROSECOND


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
    (``change_facts`` in ``worker/classify/_confirm.c``), which takes ~0.3 µs where this takes ~1.7
    and a parse ~2 (a storm's events, in process): the memory reads the facts of every change the
    classifier emits. Only for the classifier's own events; the tail's records come from any
    writer and are parsed."""
    if not value.startswith(head):
        return None
    found = _LAYOUT.match(value, len(head))
    if found is None:
        return None
    event_id, action, before, occurred = found.groups()
    blocked = action == b"block"
    return (occurred.decode(), 1 if blocked else 0, event_id.decode(), blocked and before == b"}")


change_facts: Callable[[bytes, bytes], Known | None] = layout_facts
_confirm_in_c: Callable[..., bool] | None = None
_forget_older: Callable[[dict[bytes, Any], int], int] | None = None
try:
    from worker.classify import _confirm

    change_facts = _confirm.change_facts
    _confirm_in_c, _forget_older = _confirm.confirm, _confirm.forget_older
except ImportError:  # no C compiler at install time: the Python of this module
    pass


def own_change(value: bytes) -> Known | None:
    """:func:`known_change` of an event the classifier encoded itself: its facts read at fixed
    positions (:func:`layout_facts`), parsed only when it is not in that layout."""
    return change_facts(value, CHANGE_HEAD) or known_change(value)


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
        self._now = 0
        """The batch step's clock (ms, :meth:`begin_batch`): the record timestamp of the changes it notes."""
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
        self._saw(timestamp_ms)

    def begin_batch(self, now_ms: int) -> None:
        """A batch step begins at ``now_ms`` (the wall clock, in ms, as the broker stamps records):
        the time its changes are noted at, which pruning compares with the tail's records'."""
        self._now = now_ms
        self._saw(now_ms)

    def _saw(self, timestamp_ms: int) -> None:
        """Time has reached ``timestamp_ms`` (a record's, or the batch step's): prune when due."""
        if timestamp_ms > self._newest:
            self._newest = timestamp_ms
        if len(self._entries) >= self._prune_at:
            self.prune()

    def _put(self, key: bytes, change: Stored, timestamp_ms: int) -> None:
        """Store ``change`` as the identity's latest, unless it is one of the two kept already:
        the batch's own event is noted before the tail reads its copy (and the one before it, or
        a late copy would push the newest into second place)."""
        entries = self._entries
        before = entries.get(key)
        if before is None:
            entries[key] = (change, None, timestamp_ms)
        elif not (self._same(change, before[0]) or self._same(change, before[1])):
            entries[key] = (change, before[0], timestamp_ms)

    def _same(self, change: Stored, stored: Stored | None) -> bool:
        """Whether two kept changes are the same event: compared as stored when both are bytes or
        both facts, else by their facts (the tail's copy of an event noted as facts)."""
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
        if _forget_older is not None:  # the same walk in C (worker/classify/_confirm.c says why)
            _forget_older(entries, horizon)
        else:
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
    ) -> bool:
        """The batch step's check of one keyword MO, whose change events are ``changes[first:]``
        (appended just now) and whose reply, if it has one, is ``replies[reply_mark]``: drop that
        reply when the MO is an opt-out repeating a known block (:meth:`repeated`; True: dropped),
        then note the MO's changes, as their facts, so the records after it see them.

        In C when built (``worker/classify/_confirm.c``; :meth:`confirm_in_python` is the
        reference, ``tests/unit/classify/test_confirm_c.py`` compares them): the check was about
        a fifth of the batch step in a STOP storm (in process, 200,000 storm MOs in batches of
        5,000: 4.3 µs per MO without the memory, 6.0 with it in Python), and what C leaves to
        Python is only what it cannot read (a tail record's facts, a time not canonical)."""
        if _confirm_in_c is None:
            return self.confirm_in_python(changes, first, replies, reply_mark, opt_out)
        return _confirm_in_c(
            self._entries, self._now, self.window, changes, first, replies, reply_mark, opt_out,
            CHANGE_HEAD, self._known, known_change, decide_repeat,
        )  # fmt: skip

    def confirm_in_python(
        self,
        changes: list[tuple[bytes, bytes]],
        first: int,
        replies: list[tuple[bytes, bytes]],
        reply_mark: int,
        opt_out: bool,
    ) -> bool:
        """:meth:`confirm` in Python. An opt-in lifts up to a dozen identities, mostly never
        blocked: its unblock is noted only for an identity already known (a block to lift, or a
        change it is newer than)."""
        entries, now = self._entries, self._now
        if opt_out:
            if len(changes) == first + 1:
                # The one identity an opt-out blocks, nothing known of it: nearly every STOP.
                key, value = changes[first]
                if key not in entries:
                    change = own_change(value)
                    if change is not None:
                        entries[key] = (change, None, now)
                    return False
            new = [(key, own_change(value)) for key, value in changes[first:]]
            dropped = len(replies) > reply_mark and all(
                mine is not None and key in entries and self._repeats(key, mine) for key, mine in new
            )
            if dropped:
                replies.pop()
            for key, mine in new:
                if mine is not None:
                    self._put(key, mine, now)
            return dropped
        for index in range(first, len(changes)):
            key, value = changes[index]
            if key in entries and (change := own_change(value)) is not None:
                self._put(key, change, now)
        return False

    def repeated(self, key: bytes, own: bytes) -> bool:
        """Whether the opt-out whose encoded change event is ``own`` repeats a known block (no
        confirmation)."""
        mine = own_change(own)
        return mine is not None and self._repeats(key, mine)

    def _repeats(self, key: bytes, mine: Known) -> bool:
        stored = self._entries.get(key)
        if stored is None:
            return False
        known = self._known
        others = [known(value) for value in stored[:2] if value is not None]
        return decide_repeat(mine, [change for change in others if change is not None], self.window)

    def _known(self, value: Stored) -> Known | None:
        """The facts of a kept change (as they are, for the classifier's own); for the tail's
        records, :func:`known_change`, once per event: a subscriber who repeats STOP has the same
        one or two stored events parsed at every repeat, and in a STOP storm (most of its
        opt-outs repeats of a few subscribers') those parses were the bulk of the one-confirmation
        check: ~10% of the classifier's busy time (py-spy). A stored event is the same bytes
        object each time, whose hash Python keeps, so a hit costs a dict lookup. Small on purpose
        (:data:`_PARSED_MAX`, and cleared at every prune): bounded by the map's size instead, it
        grew with the map, and the classifier's memory grew 11% over a 10-minute soak (2% before
        it)."""
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
