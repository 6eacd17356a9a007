"""Domain values: intents, actions, scopes and the events built from them.

Frozen and slotted: these cross module boundaries and must never be mutated in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from worker.constants import ALL_CHANNELS


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


class Action(StrEnum):
    BLOCK = "block"
    UNBLOCK = "unblock"


class Language(StrEnum):
    """The built-in language packs (``worker.classify.packs``). Custom rules may name other ISO 639 codes."""

    EN = "en"
    ES = "es"
    FR = "fr"
    DE = "de"
    PT = "pt"
    IT = "it"
    NL = "nl"


class MatchMode(StrEnum):
    """How a rule's keyword must appear in a message.

    ``exact``: the whole normalized message is the keyword. ``leading``: the message starts with the
    keyword and the rest is only courtesy words, numbers, a brand or emoji ("STOP ACME", "stop
    please", "STOP 2"), or ends with it after courtesy words only ("please stop"). ``phrase``: the
    words appear anywhere, unless a negation of the rule's language comes just before them.
    """

    EXACT = "exact"
    LEADING = "leading"
    PHRASE = "phrase"


class Category(StrEnum):
    """What a block stops: every message, or marketing only.

    CM.com keeps promotional and transactional traffic apart, WhatsApp users opt out of marketing
    alone, and "STOP MARKETING" asks for exactly that: a ``marketing`` block stops marketing and
    lets a one-time code or a delivery notice through; an ``all`` block (a plain STOP) stops both.
    Part of a block's identity: a marketing block and a full block on one scope are two blocks.
    """

    ALL = "all"
    MARKETING = "marketing"


class MessageCategory(StrEnum):
    """What a send service is about to send, when it asks whether it may (``is_blocked``).

    ``marketing`` is stopped by every block; ``transactional`` only by ``all`` blocks. A caller that
    does not say asks as ``marketing``: when unsure, do not message the subscriber.
    """

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class ScopeLevel(StrEnum):
    """How wide a block is: the whole account, one subaccount, or one sender (number/short code/id)."""

    ACCOUNT = "account"
    SUBACCOUNT = "subaccount"
    SENDER = "sender"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a block applies. ``channel`` is a channel name or ``*`` for every channel.

    A sender-level scope names the account and the sender, not the subaccount: a subscriber who
    stopped a number is stopped from it whichever subaccount sends through it.
    """

    level: ScopeLevel
    account_id: str
    subaccount_id: str | None = None
    sender: str | None = None
    channel: str = ALL_CHANNELS


@dataclass(frozen=True, slots=True)
class Target:
    """A prospective outbound message: from account/subaccount/sender on channel to an address."""

    account_id: str
    subaccount_id: str | None
    sender: str | None
    channel: str


@dataclass(frozen=True, slots=True)
class Source:
    """Coordinates of the inbound record an event was derived from."""

    topic: str
    partition: int
    offset: int
    message_id: str


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    event_id: str
    action: Action
    scope: Scope
    address: str
    keyword: str | None
    rule: str | None
    reason: str
    source: Source | None
    """The inbound record the change came from; None for changes that were not an MO (an operator's
    block, an import, the API, an opt-out link)."""
    occurred_at: str
    """RFC 3339 UTC with microseconds (``2026-11-24T10:00:00.000000Z``): sorts as text."""
    language: str | None = None
    """Language of the rule that matched (``en``, ``fr``...); None on events decoded from older producers."""
    match: MatchMode | None = None
    """How the message matched the rule; None on events decoded from older producers."""
    category: Category = Category.ALL
    """What the block stops (part of its identity); ``all`` on events of older producers."""
    note: str | None = None
    """A person's note on a change that was not an MO ("customer called support", the import file)."""


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    reply_id: str
    intent: Intent
    account_id: str
    subaccount_id: str | None
    channel: str
    to: str
    sender: str
    text: str
    keyword: str
    rule: str
    source: Source
    occurred_at: str
    language: str = Language.EN
    """Language of the matched rule, which is also the language of ``text``."""
    match: MatchMode = MatchMode.EXACT


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A validated inbound message (MO). Built only for messages that matched a keyword."""

    message_id: str
    channel: str
    sender: str
    """The number, short code or sender id the subscriber wrote to (the event's ``to``)."""
    address: str
    """The subscriber (the event's ``from``)."""
    account_id: str
    subaccount_id: str | None
    text: str
    received_at: str
    """Canonical RFC 3339 UTC, see :attr:`ChangeEvent.occurred_at`."""
