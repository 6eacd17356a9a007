"""Scope resolution: which block an opt-out creates, which blocks an opt-in lifts, what is blocked.

The one rule everything else follows: a message from account A / subaccount S / sender X on
channel C to address N is blocked when any active block on N *covers* (A, S, X, C).
"""

from __future__ import annotations

import orjson

from worker.constants import ALL_CHANNELS
from worker.model import Category, ChangeEvent, Scope, ScopeLevel, Target


def block_scope(
    level: ScopeLevel,
    all_channels: bool,
    account_id: str,
    subaccount_id: str | None,
    sender: str,
    channel: str,
) -> Scope:
    """The scope an opt-out creates. A subaccount-level rule on a message that names no
    subaccount widens to the account: when unsure, block more, never less."""
    ch = ALL_CHANNELS if all_channels else channel
    if level is ScopeLevel.SENDER:
        return Scope(ScopeLevel.SENDER, account_id, None, sender, ch)
    if level is ScopeLevel.SUBACCOUNT and subaccount_id is not None:
        return Scope(ScopeLevel.SUBACCOUNT, account_id, subaccount_id, None, ch)
    return Scope(ScopeLevel.ACCOUNT, account_id, None, None, ch)


def covering_scopes(target: Target) -> tuple[Scope, ...]:
    """Every scope whose block would stop a message to ``target``: what an opt-in must lift."""
    channels = (target.channel, ALL_CHANNELS) if target.channel != ALL_CHANNELS else (ALL_CHANNELS,)
    scopes = [Scope(ScopeLevel.ACCOUNT, target.account_id, None, None, ch) for ch in channels]
    if target.subaccount_id is not None:
        scopes += [
            Scope(ScopeLevel.SUBACCOUNT, target.account_id, target.subaccount_id, None, ch) for ch in channels
        ]
    if target.sender is not None:
        scopes += [Scope(ScopeLevel.SENDER, target.account_id, None, target.sender, ch) for ch in channels]
    return tuple(scopes)


def covers(scope: Scope, target: Target) -> bool:
    if scope.account_id != target.account_id:
        return False
    if scope.channel != ALL_CHANNELS and scope.channel != target.channel:
        return False
    if scope.level is ScopeLevel.SUBACCOUNT:
        return scope.subaccount_id == target.subaccount_id
    if scope.level is ScopeLevel.SENDER:
        return scope.sender == target.sender
    return True


def block_key(scope: Scope, address: str, category: Category = Category.ALL) -> bytes:
    """The change topic's record key: the block's identity, so compaction keeps its latest state.

    A marketing-only block appends its category; a full block keeps the six-part key that producers
    wrote before categories existed, so their records and ours still compact onto one key.
    """
    parts: list[object] = [
        scope.level,  # orjson writes an enum as its value
        scope.account_id,
        scope.subaccount_id,
        scope.sender,
        scope.channel,
        address,
    ]
    if category is not Category.ALL:
        parts.append(category)
    return orjson.dumps(parts)


def change_key(event: ChangeEvent) -> bytes:
    """The record key ``event`` belongs under: :func:`block_key` of its scope, address and category."""
    return block_key(event.scope, event.address, event.category)
