"""Where STOP is decided.

:func:`classify` says what a text means under a rule set (opt-out, opt-in, help or nothing).
:func:`decide` turns a matched inbound message into its consequences: the change events (one per
affected block identity) and at most one reply request. Pure: no I/O, no clock, no randomness, so
the same message always yields byte-identical decisions and ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.events import change_event_id, reply_id
from worker.model import (
    Action,
    ChangeEvent,
    InboundMessage,
    Intent,
    ReplyRequest,
    Scope,
    Source,
    Target,
)
from worker.normalize import normalize
from worker.rules import Match, RuleSet
from worker.scope import block_key, block_scope, covering_scopes

_PLACEHOLDER = re.compile(r"\{(keyword|sender|account)\}")


@dataclass(frozen=True, slots=True)
class Decision:
    intent: Intent
    changes: tuple[tuple[bytes, ChangeEvent], ...]
    """(record key, event) pairs for the change topic."""
    reply: ReplyRequest | None


def classify(text: str, rules: RuleSet) -> Match | None:
    """The keyword rule the whole message matches, or None for an ordinary message.

    Whole-message matching on the normalized text: "Stop." and "ＳＴＯＰ" match STOP, "Don't stop!"
    matches nothing. Runs for every inbound record, so it stays one normalization and one lookup.
    """
    return rules.table.get(normalize(text))


def decide(message: InboundMessage, match: Match, rules: RuleSet, source: Source) -> Decision:
    rule = match.rule
    intent = rule.intent
    changes: list[tuple[bytes, ChangeEvent]] = []
    if intent is Intent.OPT_OUT:
        scope = block_scope(
            rule.level,
            rule.all_channels,
            message.account_id,
            message.subaccount_id,
            message.sender,
            message.channel,
        )
        changes.append(_change(message, match, source, Action.BLOCK, scope, "opt_out_keyword"))
    elif intent is Intent.OPT_IN:
        target = Target(message.account_id, message.subaccount_id, message.sender, message.channel)
        changes.extend(
            _change(message, match, source, Action.UNBLOCK, scope, "opt_in_keyword")
            for scope in covering_scopes(target)
        )
    return Decision(intent, tuple(changes), _reply(message, match, rules, source))


def _change(
    message: InboundMessage,
    match: Match,
    source: Source,
    action: Action,
    scope: Scope,
    reason: str,
) -> tuple[bytes, ChangeEvent]:
    key = block_key(scope, message.address)
    event = ChangeEvent(
        event_id=change_event_id(message.account_id, message.message_id, key),
        action=action,
        scope=scope,
        address=message.address,
        keyword=match.keyword,
        rule=match.rule.name,
        reason=reason,
        source=source,
        occurred_at=message.received_at,
    )
    return key, event


def _reply(message: InboundMessage, match: Match, rules: RuleSet, source: Source) -> ReplyRequest | None:
    template = rules.reply_text(match)
    if not template:
        return None
    values = {"keyword": match.keyword, "sender": message.sender, "account": message.account_id}
    # One pass, so a substituted value that itself looks like a placeholder is left alone.
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return ReplyRequest(
        reply_id=reply_id(message.account_id, message.message_id),
        intent=match.rule.intent,
        account_id=message.account_id,
        subaccount_id=message.subaccount_id,
        channel=message.channel,
        to=message.address,
        sender=message.sender,
        text=text,
        keyword=match.keyword,
        rule=match.rule.name,
        source=source,
        occurred_at=message.received_at,
    )
