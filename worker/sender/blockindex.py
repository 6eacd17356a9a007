"""The send service's in-memory blocklist: answers ``is_blocked`` in constant time and takes live
changes under the same last-writer-wins rule as the projector.

Pure (no I/O): :mod:`worker.sender.view` feeds it snapshot lines and change events. The layout is
chosen for 10 million blocks in well under 1.5 GB of Python objects, and for a lookup that
mostly touches nothing but a small bitmap:

* ``_filter`` is a bitmap over ``hash(address)`` with at least 8 bits per block: most addresses
  a send service asks about are not blocked, and most of those are turned away here, in a
  structure small enough to stay in the CPU caches.
* ``_active`` maps an address to the identity of its one active block, or to a frozenset of
  identities when it has several. An identity is one integer, an index into ``_scopes``: each
  interned scope takes two consecutive slots, the even one for its full block and the odd one for
  its marketing-only block (the category is part of a block's identity: "STOP MARKETING" and
  "STOP" on one scope are two blocks). So a category costs no memory per block and, on the hit
  path only, one bit test (and one more set membership for an address with several blocks).
  Canonical E.164 numbers (``+`` and up to 18 digits, no leading zero) are keyed by their
  integer value: half the memory of the string, and the conversion only runs for addresses that
  got past the bitmap.
* Last-writer-wins needs every block identity's version, including unblocked ones (an old STOP
  replayed after a newer START must lose). The snapshot's versions stay in flat arrays sorted by
  address (found by bisection, only when a change arrives); changes since then sit in a small dict.

A version is ``(occurred_at in µs * 2 + action rank, first 8 bytes of the event id)``: the order of
:func:`worker.events.ordering.version` (which Postgres applies too) packed into two machine integers.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from worker.constants import ALL_CHANNELS
from worker.model import Action, Category, ChangeEvent, MessageCategory, ScopeLevel

#: (account_id, level, subaccount id or sender or '', channel): one block's scope, interned.
ScopeKey = tuple[str, str, str, str]
Version = tuple[int, int]
Identity = int
"""A block identity: the even slot of its scope in ``_scopes``, plus one if marketing-only."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ACCOUNT = ScopeLevel.ACCOUNT.value
_SUBACCOUNT = ScopeLevel.SUBACCOUNT.value
_SENDER = ScopeLevel.SENDER.value
_MARKETING = MessageCategory.MARKETING
_TRANSACTIONAL = MessageCategory.TRANSACTIONAL.value
#: A snapshot entry's category -> the identity's low bit (an entry without one is a full block).
_CATEGORY_BITS = {Category.ALL.value: 0, Category.MARKETING.value: 1}
_CATEGORIES = (Category.ALL.value, Category.MARKETING.value)


class SnapshotEntryError(ValueError):
    """A snapshot line that is not a valid entry (the reader reports it with its line number)."""


def version_of(occurred_at: str, blocked: bool, event_id: str) -> Version:
    """Pack ``worker.events.ordering.version`` into two integers; equal order, a fraction of the memory.

    The event id tie-break keeps its first 8 bytes in byte order (Postgres compares ids with
    COLLATE "C"): our ids are 32 hex digits, so that is 64 bits of the hash.
    """
    micros = (datetime.fromisoformat(occurred_at) - _EPOCH) // _MICROSECOND
    return (micros * 2 + (1 if blocked else 0), int.from_bytes(event_id.encode()[:8].ljust(8, b"\0"), "big"))


@dataclass(frozen=True, slots=True)
class Block:
    """One active block, as :meth:`BlockIndex.active_blocks` lists them (tests, debugging)."""

    address: str
    account_id: str
    level: str
    scope_id: str
    """The subaccount id or sender for those levels, '' for an account-level block."""
    channel: str
    category: str = Category.ALL.value
    """``all`` (stops every message) or ``marketing`` (stops marketing only)."""


Key = int | str
"""An address as the index keys it: the integer value of a canonical E.164 number, else the text."""


def address_key(address: str) -> Key:
    """``+15551234567`` -> 15551234567; anything else stays as it is.

    Only canonical numbers convert (ASCII digits, no leading zero, at most 18 digits), so no two
    different addresses share a key: ``+0155``, ``+١٥٥`` and ``+1_55`` all stay strings.
    """
    if address[:1] == "+" and 1 < len(address) <= 19 and address[1] != "0":
        digits = address[1:]
        if digits.isdigit() and digits.isascii():
            return int(digits)
    return address


def key_address(key: Key) -> str:
    return key if type(key) is str else f"+{key}"


def _sort_key(address: str) -> tuple[int, str]:
    """The order of snapshot lines: length, then code points (Postgres: length, COLLATE "C").
    Canonical E.164 numbers in this order are in numeric order, so their integer keys bisect."""
    return (len(address), address)


class _Versions:
    """Snapshot versions of one kind of key (integer or text), sorted for bisection."""

    def __init__(self, keys: array[int] | list[str]) -> None:
        self.keys = keys
        self.scopes = array("I")  # block identities
        self.times = array("q")
        self.ids = array("Q")

    def add(self, key: Key, identity: Identity, time: int, tie: int) -> None:
        self.keys.append(key)  # type: ignore[arg-type]
        self.scopes.append(identity)
        self.times.append(time)
        self.ids.append(tie)

    def find(self, key: Key, identity: Identity) -> Version | None:
        keys = self.keys
        if type(key) is int:
            row = bisect.bisect_left(keys, key)
        else:
            row = bisect.bisect_left(keys, _sort_key(key), key=_sort_key)  # type: ignore[arg-type]
        while row < len(keys) and keys[row] == key:
            if self.scopes[row] == identity:
                return (self.times[row], self.ids[row])
            row += 1
        return None


class BlockIndex:
    def __init__(self, expected_blocks: int = 0) -> None:
        self._scopes: list[ScopeKey] = []
        """Each scope twice: at its full block's identity (even) and its marketing block's (odd)."""
        self._scope_ids: dict[ScopeKey, Identity] = {}
        """Scope -> its full block's identity (even)."""
        self._active: dict[Key, Identity | frozenset[Identity]] = {}
        self._numbers = _Versions(array("q"))
        self._texts = _Versions([])
        # Versions of identities changed since the snapshot: (key, identity) -> version.
        self._changed: dict[tuple[Key, Identity], Version] = {}
        self.blocks = 0
        """Active blocks right now."""
        self._size_filter(expected_blocks)

    # -- answering -------------------------------------------------------------------------------

    def is_blocked(
        self,
        address: str,
        account: str,
        subaccount: str | None = None,
        sender: str | None = None,
        channel: str = "sms",
        category: MessageCategory = _MARKETING,
    ) -> bool:
        """Would a ``category`` message from account/subaccount/sender on ``channel`` to ``address``
        break an opt-out? The coverage rule of :func:`worker.classify.scope.covers`: at most six
        lookups. Every block stops a marketing message (the default: when unsure, do not message);
        a transactional one is stopped by full blocks only, not by a "STOP MARKETING"."""
        h = hash(address)
        if not self._filter[(h >> 3) & self._filter_mask] & (1 << (h & 7)):
            return False
        found = self._active.get(address_key(address))
        if found is None:
            return False
        if type(found) is int:
            if found & 1 and category == _TRANSACTIONAL:
                return False  # a marketing-only block lets a transactional message through
            acct, level, scope_id, ch = self._scopes[found]
            return (
                acct == account
                and ch in (channel, ALL_CHANNELS)
                and (
                    level == _ACCOUNT
                    or (scope_id == subaccount if level == _SUBACCOUNT else scope_id == sender)
                )
            )
        assert isinstance(found, frozenset)
        ids = self._scope_ids
        marketing = category != _TRANSACTIONAL
        for wanted_level, wanted_id in ((_ACCOUNT, ""), (_SUBACCOUNT, subaccount), (_SENDER, sender)):
            if wanted_id is None:
                continue
            for wanted_channel in (channel, ALL_CHANNELS):
                full = ids.get((account, wanted_level, wanted_id, wanted_channel))
                if full is not None and (full in found or (marketing and full + 1 in found)):
                    return True
        return False

    def active_blocks(self) -> Iterator[Block]:
        for key, found in self._active.items():
            address = key_address(key)
            for identity in (found,) if type(found) is int else sorted(found):  # type: ignore[arg-type]
                yield Block(address, *self._scopes[identity], _CATEGORIES[identity & 1])

    # -- loading a snapshot ----------------------------------------------------------------------

    def load(self, active: Iterable[bytes], unblocked: Iterable[bytes]) -> None:
        """Fill an empty index from a snapshot's entry lines (see ``schemas/snapshot-entry.v1.json``).

        Both streams must be in snapshot order (address length, then address), as the writer
        produces them; the versions of both go into one sorted base so bisection finds either.
        """
        if self.blocks or self._active or self._numbers.keys or self._texts.keys:
            raise RuntimeError("load() fills an empty index once")
        rows = _merge(_rows(active, True), _rows(unblocked, False))
        numbers, texts = self._numbers, self._texts
        active_map = self._active
        intern = self._intern
        mark = self._mark
        previous_length, previous = 0, ""
        blocks = 0
        for address, scope, bit, blocked, time, tie in rows:
            length = len(address)
            if length < previous_length or (length == previous_length and address < previous):
                raise SnapshotEntryError(f"entries out of order: {address!r} after {previous!r}")
            previous_length, previous = length, address
            identity = intern(scope) + bit
            key = address_key(address)
            (numbers if type(key) is int else texts).add(key, identity, time, tie)
            if blocked:
                blocks += 1
                current = active_map.get(key)
                active_map[key] = identity if current is None else _with(current, identity)
                mark(address)
        self.blocks = blocks
        if blocks > self._filter_capacity:
            self._rebuild_filter()

    # -- live changes ----------------------------------------------------------------------------

    def apply(self, event: ChangeEvent) -> bool:
        """Apply one change event if it is newer than what the index holds; True if it changed.

        The event's category is part of the identity it changes: a marketing unblock ("START
        MARKETING") lifts the marketing block and leaves a full block on the same scope alone."""
        scope = event.scope
        level = scope.level.value
        if scope.level is ScopeLevel.ACCOUNT:
            scope_id = ""
        else:
            scope_id = (scope.subaccount_id if scope.level is ScopeLevel.SUBACCOUNT else scope.sender) or ""
        index = self._intern((scope.account_id, level, scope_id, scope.channel))
        if event.category is Category.MARKETING:
            index += 1
        key = address_key(event.address)
        blocked = event.action is Action.BLOCK
        incoming = version_of(event.occurred_at, blocked, event.event_id)
        current = self._version(key, index)
        if current is not None and incoming <= current:
            return False
        self._changed[(key, index)] = incoming
        was_blocked = current is not None and current[0] & 1 == 1
        if blocked and not was_blocked:
            found = self._active.get(key)
            self._active[key] = index if found is None else _with(found, index)
            self.blocks += 1
            if self.blocks > 2 * self._filter_capacity:
                self._rebuild_filter()
            else:
                self._mark(event.address)
        elif not blocked and was_blocked:
            self._active_remove(key, index)
            self.blocks -= 1
        return True

    # -- internals -------------------------------------------------------------------------------

    def _size_filter(self, blocks: int) -> None:
        bits = 1 << max(16, (8 * max(blocks, 1) - 1).bit_length())
        self._filter = bytearray(bits // 8)
        self._filter_mask = bits // 8 - 1
        self._filter_capacity = bits // 8
        """Blocks the filter was sized for (8 bits each): past twice that, it is rebuilt bigger."""

    def _mark(self, address: str) -> None:
        h = hash(address)
        self._filter[(h >> 3) & self._filter_mask] |= 1 << (h & 7)

    def _rebuild_filter(self) -> None:
        """Bits are only ever set (an unblock leaves its bit: a harmless false "maybe"), so a
        filter that outgrew its size is rebuilt from the active keys."""
        self._size_filter(self.blocks)
        for key in self._active:
            self._mark(key_address(key))

    def _intern(self, scope: ScopeKey) -> Identity:
        """The identity of ``scope``'s full block (even); its marketing block's is the next one."""
        index = self._scope_ids.get(scope)
        if index is None:
            index = len(self._scopes)
            self._scopes += (scope, scope)
            self._scope_ids[scope] = index
        return index

    def _version(self, key: Key, index: int) -> Version | None:
        changed = self._changed.get((key, index))
        if changed is not None:
            return changed
        return (self._numbers if type(key) is int else self._texts).find(key, index)

    def _active_remove(self, key: Key, index: int) -> None:
        found = self._active[key]
        if type(found) is int:
            del self._active[key]
            return
        assert isinstance(found, frozenset)
        rest = found - {index}
        self._active[key] = next(iter(rest)) if len(rest) == 1 else rest


def _with(found: int | frozenset[int], index: int) -> int | frozenset[int]:
    if type(found) is int:
        return found if found == index else frozenset((found, index))
    assert isinstance(found, frozenset)
    return found | {index}


_Row = tuple[str, ScopeKey, int, bool, int, int]
"""(address, scope, category bit, active, version time, version tie-break)"""


def _rows(lines: Iterable[bytes], blocked: bool) -> Iterator[_Row]:
    loads = orjson.loads
    for line in lines:
        try:
            doc = loads(line)
            level = doc["level"]
            scope_id = (
                doc["subaccount_id"] if level == _SUBACCOUNT else doc["sender"] if level == _SENDER else ""
            )
            address, account, channel = doc["address"], doc["account_id"], doc["channel"]
            if level not in _LEVELS or not _all_str(scope_id, address, account, channel):
                raise TypeError("address, account_id, channel and the level's scope id must be strings")
            # Absent in snapshots written before categories: every block was a full one.
            bit = _CATEGORY_BITS[doc.get("category", "all")]
            time, tie = version_of(doc["occurred_at"], blocked, doc["event_id"])
            yield (address, (account, level, scope_id, channel), bit, blocked, time, tie)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotEntryError(
                f"not a snapshot entry ({type(exc).__name__}: {exc}): {line[:200]!r}"
            ) from None


_LEVELS = frozenset((_ACCOUNT, _SUBACCOUNT, _SENDER))


def _all_str(*values: object) -> bool:
    return all(type(value) is str for value in values)


def _merge(first: Iterator[_Row], second: Iterator[_Row]) -> Iterator[_Row]:
    """Two row streams in snapshot order as one (the unblocked stream is the short one)."""
    a = next(first, None)
    b = next(second, None)
    kb = _sort_key(b[0]) if b is not None else None
    while a is not None and b is not None:
        assert kb is not None
        if kb < _sort_key(a[0]):
            yield b
            b = next(second, None)
            kb = _sort_key(b[0]) if b is not None else None
        else:
            yield a
            a = next(first, None)
    if a is not None:
        yield a
        yield from first
    if b is not None:
        yield b
        yield from second
