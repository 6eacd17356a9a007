"""The send service's in-memory blocklist: answers ``is_blocked`` in constant time and takes live
changes under the same last-writer-wins rule as the projector.

Pure (no I/O): :mod:`worker.sender` feeds it snapshot lines and change events. The layout is
chosen for 10 million blocks in well under 1.5 GB of Python objects:

* ``_active`` maps an address to the scope of its one active block (an interned small-integer
  index into ``_scopes``), or to a frozenset of indexes when it has several. Most addresses a send
  service asks about are not blocked, so the common answer is one dict miss.
* Last-writer-wins needs every block identity's version, including unblocked ones (an old STOP
  replayed after a newer START must lose). The snapshot's versions stay in flat arrays sorted by
  address (found by bisection, only when a change arrives); changes since then sit in a small dict.

A version is ``(occurred_at in µs * 2 + action rank, first 8 bytes of the event id)``: the order of
:func:`worker.ordering.version` (which Postgres applies too) packed into two machine integers.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from worker.constants import ALL_CHANNELS
from worker.model import Action, ChangeEvent, ScopeLevel
from worker.ordering import ACTION_RANK

#: (account_id, level, subaccount id or sender or '', channel): one block's scope, interned.
ScopeKey = tuple[str, str, str, str]
Version = tuple[int, int]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ACCOUNT = ScopeLevel.ACCOUNT.value
_SUBACCOUNT = ScopeLevel.SUBACCOUNT.value
_SENDER = ScopeLevel.SENDER.value


class SnapshotEntryError(ValueError):
    """A snapshot line that is not a valid entry (the reader reports it with its line number)."""


def version_of(occurred_at: str, blocked: bool, event_id: str) -> Version:
    """Pack ``worker.ordering.version`` into two integers; equal order, a fraction of the memory.

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


class BlockIndex:
    def __init__(self) -> None:
        self._scopes: list[ScopeKey] = []
        self._scope_ids: dict[ScopeKey, int] = {}
        self._active: dict[str, int | frozenset[int]] = {}
        # Snapshot rows (active and unblocked), sorted by address: versions for last-writer-wins.
        self._base_addresses: list[str] = []
        self._base_scopes = array("I")
        self._base_times = array("q")
        self._base_ids = array("Q")
        # Versions of identities changed since the snapshot: (address, scope index) -> version.
        self._changed: dict[tuple[str, int], Version] = {}
        self.blocks = 0
        """Active blocks right now."""

    # -- answering -------------------------------------------------------------------------------

    def is_blocked(
        self,
        address: str,
        account: str,
        subaccount: str | None = None,
        sender: str | None = None,
        channel: str = "sms",
    ) -> bool:
        """Would a message from account/subaccount/sender on ``channel`` to ``address`` break an
        opt-out? The coverage rule of :func:`worker.scope.covers`: at most six lookups."""
        found = self._active.get(address)
        if found is None:
            return False
        if type(found) is int:
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
        for wanted_level, wanted_id in ((_ACCOUNT, ""), (_SUBACCOUNT, subaccount), (_SENDER, sender)):
            if wanted_id is None:
                continue
            for wanted_channel in (channel, ALL_CHANNELS):
                index = ids.get((account, wanted_level, wanted_id, wanted_channel))
                if index is not None and index in found:
                    return True
        return False

    def active_blocks(self) -> Iterator[Block]:
        for address, found in self._active.items():
            for index in (found,) if type(found) is int else sorted(found):  # type: ignore[arg-type]
                yield Block(address, *self._scopes[index])

    # -- loading a snapshot ----------------------------------------------------------------------

    def load(self, active: Iterable[bytes], unblocked: Iterable[bytes]) -> None:
        """Fill an empty index from a snapshot's entry lines (see ``schemas/snapshot-entry.v1.json``).

        Both streams must be sorted by address in byte order, as the snapshot writer produces
        them; the versions of both go into one sorted base so bisection finds either.
        """
        if self._base_addresses or self._active:
            raise RuntimeError("load() fills an empty index once")
        rows = _merge(_rows(active, True), _rows(unblocked, False))
        addresses, scopes, times, ids = (
            self._base_addresses,
            self._base_scopes,
            self._base_times,
            self._base_ids,
        )
        active_map = self._active
        intern = self._intern
        previous = ""
        blocks = 0
        for address, key, blocked, time, tie in rows:
            if address < previous:
                raise SnapshotEntryError(f"entries not sorted by address: {address!r} after {previous!r}")
            previous = address
            index = intern(key)
            addresses.append(address)
            scopes.append(index)
            times.append(time)
            ids.append(tie)
            if blocked:
                blocks += 1
                current = active_map.get(address)
                if current is None:
                    active_map[address] = index
                else:
                    active_map[address] = _with(current, index)
        self.blocks = blocks

    # -- live changes ----------------------------------------------------------------------------

    def apply(self, event: ChangeEvent) -> bool:
        """Apply one change event if it is newer than what the index holds; True if it changed."""
        scope = event.scope
        level = scope.level.value
        scope_id: str = (
            (scope.subaccount_id if scope.level is ScopeLevel.SUBACCOUNT else scope.sender)
            if scope.level is not ScopeLevel.ACCOUNT
            else None
        ) or ""
        index = self._intern((scope.account_id, level, scope_id, scope.channel))
        address = event.address
        blocked = event.action is Action.BLOCK
        incoming = version_of(event.occurred_at, ACTION_RANK[event.action] == 1, event.event_id)
        current = self._version(address, index)
        if current is not None and incoming <= current:
            return False
        self._changed[(address, index)] = incoming
        was_blocked = current is not None and current[0] & 1 == 1
        if blocked and not was_blocked:
            found = self._active.get(address)
            self._active[address] = index if found is None else _with(found, index)
            self.blocks += 1
        elif not blocked and was_blocked:
            self._active_remove(address, index)
            self.blocks -= 1
        return True

    # -- internals -------------------------------------------------------------------------------

    def _intern(self, key: ScopeKey) -> int:
        index = self._scope_ids.get(key)
        if index is None:
            index = len(self._scopes)
            self._scopes.append(key)
            self._scope_ids[key] = index
        return index

    def _version(self, address: str, index: int) -> Version | None:
        changed = self._changed.get((address, index))
        if changed is not None:
            return changed
        addresses = self._base_addresses
        row = bisect.bisect_left(addresses, address)
        while row < len(addresses) and addresses[row] == address:
            if self._base_scopes[row] == index:
                return (self._base_times[row], self._base_ids[row])
            row += 1
        return None

    def _active_remove(self, address: str, index: int) -> None:
        found = self._active[address]
        if type(found) is int:
            del self._active[address]
            return
        assert isinstance(found, frozenset)
        rest = found - {index}
        self._active[address] = next(iter(rest)) if len(rest) == 1 else rest


def _with(found: int | frozenset[int], index: int) -> int | frozenset[int]:
    if type(found) is int:
        return found if found == index else frozenset((found, index))
    assert isinstance(found, frozenset)
    return found | {index}


_Row = tuple[str, ScopeKey, bool, int, int]


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
            time, tie = version_of(doc["occurred_at"], blocked, doc["event_id"])
            yield (address, (account, level, scope_id, channel), blocked, time, tie)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotEntryError(
                f"not a snapshot entry ({type(exc).__name__}: {exc}): {line[:200]!r}"
            ) from None


_LEVELS = frozenset((_ACCOUNT, _SUBACCOUNT, _SENDER))


def _all_str(*values: object) -> bool:
    return all(type(value) is str for value in values)


def _merge(first: Iterator[_Row], second: Iterator[_Row]) -> Iterator[_Row]:
    """Two address-sorted row streams as one (a two-way merge: cheaper than heapq for two)."""
    a = next(first, None)
    b = next(second, None)
    while a is not None and b is not None:
        if b[0] < a[0]:
            yield b
            b = next(second, None)
        else:
            yield a
            a = next(first, None)
    if a is not None:
        yield a
        yield from first
    if b is not None:
        yield b
        yield from second
