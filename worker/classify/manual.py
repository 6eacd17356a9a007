"""Changes that are not an MO: an operator's block or unblock, one line of an imported list.

The sibling of :func:`worker.classify.decide.decide`. There a subscriber's message decides; here a
person does (``optout block``, ``optout unblock``, ``optout import``). The result is the same
change event, keyed by the same block identity (:func:`worker.classify.scope.block_key`), so the
projector, the snapshots and every send service's view treat it like any other change. It lives
in ``classify`` rather than ``events`` because it decides a scope and a key (``classify.scope``),
and ``events`` (encoding, decoding) never depends on ``classify``.

Pure: validation and construction only. Reading files and producing is :mod:`worker.ops.manual`.

Event ids are derived, never random (:func:`worker.events.outgoing.derive_id`), and include the
instant of the change: two deliberate blocks a minute apart are two history entries, while a
command retried with the same instant (``--at``), or an import re-run after a crash, yields the
same ids and every consumer drops the repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from worker.classify.scope import block_key
from worker.constants import ALL_CHANNELS, MAX_NOTE_CHARS
from worker.errors import InputError
from worker.events.address import Countries, canonical_address
from worker.events.fields import field_problem
from worker.events.inbound import format_instant, parse_instant
from worker.events.outgoing import derive_id
from worker.model import Action, Category, ChangeEvent, Scope, ScopeLevel

_NO_COUNTRIES = Countries()
#: How an address on every channel is read: as a phone number when it is one (sms is a phone channel).
_PHONE = "sms"

#: The ``reason`` of a change an operator made with ``optout block`` / ``optout unblock``.
REASON_MANUAL = "manual"
#: The ``reason`` of a change made through the HTTP API (``POST /v1/blocks``, ``/v1/unblocks``).
REASON_API = "api"
#: The ``reason`` of a change read from a file by ``optout import``.
REASON_IMPORT = "import"

#: The fields of a manual change, as the import formats name them (``README``: Manual changes).
FIELDS = (
    "address",
    "account",
    "subaccount",
    "sender",
    "channel",
    "category",
    "action",
    "note",
    "occurred_at",
)
#: Other spellings accepted for a field (the change events' own names).
ALIASES = {"account_id": "account", "subaccount_id": "subaccount"}


_Choice = TypeVar("_Choice", Action, Category)


class ManualChangeError(ValueError):
    """A change that cannot be made as given; the message is one line naming the field."""


@dataclass(frozen=True, slots=True)
class ManualChange:
    """A validated change a person asked for: what to do, to whom, where, and why."""

    action: Action
    address: str
    scope: Scope
    category: Category = Category.ALL
    note: str | None = None
    occurred_at: str | None = None
    """When it happened, if the request says (an import's ``occurred_at`` column), canonical UTC."""


def manual_change(fields: Mapping[str, str | None], countries: Countries = _NO_COUNTRIES) -> ManualChange:
    """Validate the fields of one change (names of :data:`FIELDS`; absent, None or blank = not
    given) and build it. Raises :class:`ManualChangeError` with one line naming what is wrong.

    ``address`` and ``account`` are required. ``subaccount`` or ``sender`` (not both: a sender-level
    block covers every subaccount sending through that sender) narrows the scope; ``channel``
    defaults to every channel (``*``), ``category`` to ``all``, ``action`` to ``block``. Values are
    taken as written, but for surrounding white space (a spreadsheet's padding), except the
    address: canonicalized as the classifier does (:mod:`worker.events.address`; ``countries`` for
    national numbers), so a block typed as ``whatsapp:+44…`` or ``07700 900123`` lands on the key
    the subscriber's own STOP would. A block on every channel reads the address as a phone number
    if it is one; a prefix is stripped but never narrows the block to its channel (when unsure,
    block more).
    """
    get = {name: _given(value) for name, value in fields.items()}
    address = _identifier(get, "address", required=True)
    account = _identifier(get, "account", required=True)
    subaccount = _identifier(get, "subaccount")
    sender = _identifier(get, "sender")
    channel = _identifier(get, "channel") or ALL_CHANNELS
    assert address is not None  # required above
    assert account is not None
    if subaccount is not None and sender is not None:
        raise ManualChangeError(
            "subaccount and sender are both set: a block is on a subaccount or on a sender, not both"
        )
    action = _choice(get, "action", Action, Action.BLOCK)
    category = _choice(get, "category", Category, Category.ALL)
    note = get.get("note")
    if note is not None and (len(note) > MAX_NOTE_CHARS or "\x00" in note or _undecodable(note)):
        raise ManualChangeError(f"note: at most {MAX_NOTE_CHARS} characters of UTF-8 text, no NUL")
    occurred_at = get.get("occurred_at")
    if occurred_at is not None:
        occurred_at = canonical_instant(occurred_at, "occurred_at")
    found = canonical_address(address, _PHONE if channel == ALL_CHANNELS else channel, countries.of(account))
    address = found.address  # the channel stays as given: a prefix never narrows a block
    if sender is not None:
        scope = Scope(ScopeLevel.SENDER, account, None, sender, channel)
    elif subaccount is not None:
        scope = Scope(ScopeLevel.SUBACCOUNT, account, subaccount, None, channel)
    else:
        scope = Scope(ScopeLevel.ACCOUNT, account, None, None, channel)
    return ManualChange(action, address, scope, category, note, occurred_at)


def canonical_instant(value: str, name: str) -> str:
    """An RFC 3339 timestamp with an offset, as canonical UTC text; else :class:`ManualChangeError`."""
    try:
        return format_instant(parse_instant(value.strip(), name))
    except InputError as exc:
        raise ManualChangeError(exc.detail) from None


def manual_event(
    change: ManualChange, occurred_at: str, reason: str = REASON_MANUAL
) -> tuple[bytes, ChangeEvent]:
    """The change event of an operator's ``optout block`` / ``optout unblock`` at ``occurred_at``
    (canonical UTC; the command's ``--at``, else now), and its record key. ``reason``: ``manual``;
    ``api`` for a change asked through the HTTP API; ``link`` for a subscriber's confirmed opt-out
    link (:mod:`worker.classify.links`): the same change, asked another way.

    The id is derived from the reason, the block identity, the action and the instant: the same
    command at the same instant is one event, a second block a minute later is another history entry.
    """
    when = change.occurred_at or occurred_at
    key = block_key(change.scope, change.address, change.category)
    event_id = derive_id(reason, key.decode(), change.action.value, when)
    return key, _event(change, event_id, reason, when)


def imported_event(
    change: ManualChange, occurred_at: str, file_sha256: str, line: int
) -> tuple[bytes, ChangeEvent]:
    """The change event of line ``line`` of an imported file (``file_sha256``: its content) and its
    record key. ``occurred_at``: the import's instant, used when the line gives none.

    The id is derived from the file's content, the line, the block identity and the instant, so
    running the same import again (after a crash half-way) produces the same ids and the projector
    keeps one history row each. The instant is part of it so that one id never stands for two
    different events (the state table orders by instant, then by id).
    """
    when = change.occurred_at or occurred_at
    key = block_key(change.scope, change.address, change.category)
    event_id = derive_id(REASON_IMPORT, file_sha256, str(line), key.decode(), when)
    return key, _event(change, event_id, REASON_IMPORT, when)


def _event(change: ManualChange, event_id: str, reason: str, occurred_at: str) -> ChangeEvent:
    return ChangeEvent(
        event_id=event_id,
        action=change.action,
        scope=change.scope,
        address=change.address,
        keyword=None,
        rule=None,
        reason=reason,
        source=None,
        occurred_at=occurred_at,
        category=change.category,
        note=change.note,
    )


def _given(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _identifier(get: Mapping[str, str | None], name: str, *, required: bool = False) -> str | None:
    value = get.get(name)
    if value is None:
        if required:
            raise ManualChangeError(f"{name} is missing")
        return None
    if _undecodable(value):
        raise ManualChangeError(f"{name} is not valid UTF-8")
    problem = field_problem(value)
    if problem is not None:
        raise ManualChangeError(f"{name} {problem}")
    return value


def _choice(get: Mapping[str, str | None], name: str, kind: type[_Choice], default: _Choice) -> _Choice:
    value = get.get(name)
    if value is None:
        return default
    try:
        return kind(value.lower())
    except ValueError:
        choices = " or ".join(member.value for member in kind)
        raise ManualChangeError(f"{name} {value[:40]!r} is not {choices}") from None


def _undecodable(value: str) -> bool:
    """Text read with ``errors="surrogateescape"`` keeps bytes that were not UTF-8 as lone
    surrogates: such a value is refused by name rather than stored mangled."""
    return any("\udc80" <= char <= "\udcff" for char in value)
