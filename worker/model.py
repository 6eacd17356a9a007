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
    source: Source
    occurred_at: str
    """RFC 3339 UTC with microseconds (``2026-11-24T10:00:00.000000Z``): sorts as text."""


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
