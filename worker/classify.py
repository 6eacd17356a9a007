"""Where STOP is decided.

:func:`classify` says what a text means under a rule set (opt-out, opt-in, help or nothing), and
which rule, language and match mode decided it.
:func:`decide` turns a matched inbound message into its consequences: the change events (one per
affected block identity) and at most one reply request. Pure: no I/O, no clock, no randomness, so
the same message always yields byte-identical decisions and ids.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from worker.events import change_event_id, reply_id
from worker.model import (
    Action,
    ChangeEvent,
    InboundMessage,
    Intent,
    MatchMode,
    ReplyRequest,
    Scope,
    Source,
    Target,
)
from worker.normalize import normalize
from worker.rules import Match, Phrases, RuleSet
from worker.scope import block_key, block_scope, covering_scopes

_PLACEHOLDER = re.compile(r"\{(keyword|sender|account)\}")
#: Same table as :func:`worker.normalize.tokens`, inlined below: this is the per-message path.
_SEPARATORS = bytes.maketrans(
    (string.punctuation + string.whitespace).encode(), b" " * len(string.punctuation + string.whitespace)
)
#: A leading keyword with more words around it than this is a sentence, not a request.
_MAX_LEADING_WORDS = 8
#: Unknown words a leading keyword may be followed by: a brand ("STOP ACME PHARMACY").
_MAX_BRAND_WORDS = 2
#: How many words before a phrase are searched for a negation cue ("I do not want to opt out").
_NEGATION_WINDOW = 4
_CLAUSE_END = re.compile(r"[,.;:!?¿¡]")


@dataclass(frozen=True, slots=True)
class Decision:
    intent: Intent
    changes: tuple[tuple[bytes, ChangeEvent], ...]
    """(record key, event) pairs for the change topic."""
    reply: ReplyRequest | None


def classify(text: str, rules: RuleSet) -> Match | None:
    """The rule the message matches, or None for an ordinary message.

    In order of cost, each step only for messages the previous ones did not decide:

    1. exact: the whole normalized message is a keyword ("Stop.", "ＳＴＯＰ", "arret"): one dict lookup;
    2. leading: the first word (after courtesy words only: "please stop") starts a leading keyword,
       and every word after it is a courtesy word, a number, emoji, a keyword of the same intent,
       or one of at most two unknown words (a brand); one "ordinary" word ("by", "my", "date") or
       a question mark means a sentence ("stop by later?", "cancel my order");
    3. phrase: some word of the message is a trigger word of a phrase, and the phrase regex finds
       a phrase with no negation cue of its language in the words just before it.

    An opt-out wins over an opt-in or help found by another step: a missed opt-out is the costly
    mistake. Ordinary chat usually pays one normalization, one lookup, one tokenization and two
    set operations.
    """
    key = normalize(text)
    match = rules.table.get(key)
    if match is not None or not key:
        return match
    words = key.encode().translate(_SEPARATORS).split()
    if not words:
        return None
    lead = None
    if (
        len(words) <= _MAX_LEADING_WORDS
        and (words[0] in rules.first or words[0] in rules.courtesy)
        and "?" not in text
        and "¿" not in text
    ):
        lead = _leading(words, rules)
        if lead is not None and lead.rule.intent is Intent.OPT_OUT:
            return lead
    phrases = rules.phrases
    if phrases is not None and not phrases.triggers.isdisjoint(words):
        found = _phrase(key, words, phrases)
        if found is not None and (lead is None or found.rule.intent is Intent.OPT_OUT):
            return found
    return lead


def _leading(words: list[bytes], rules: RuleSet) -> Match | None:
    start = 0
    while start < len(words) - 1 and words[start] in rules.courtesy:
        start += 1  # "please stop", "ok stop thanks"
    for lead in rules.first.get(words[start], ()):
        end = start + len(lead.words)
        if tuple(words[start:end]) == lead.words and _filler(words[end:], lead.match.rule.intent, rules):
            return lead.match
    return None


def _filler(words: list[bytes], intent: Intent, rules: RuleSet) -> bool:
    """Whether ``words`` around a leading keyword leave it a request rather than a sentence."""
    brands = 0
    for word in words:
        if word in rules.ordinary:
            return False
        other = rules.keyword_words.get(word)
        if other is not None:
            if other is intent:
                continue
            return False
        if word in rules.courtesy or word.isdigit():
            continue
        if not any(char.isalnum() for char in word.decode(errors="replace")):
            continue  # emoji and symbols
        brands += 1
        if brands > _MAX_BRAND_WORDS:
            return False
    return True


def _phrase(key: str, words: list[bytes], phrases: Phrases) -> Match | None:
    """The first phrase (an opt-out if any) whose trigger word is in ``words`` and that is not negated.

    ``search`` in a loop rather than ``finditer``: an iterator costs more than the search itself.
    """
    by_trigger, items = phrases.by_trigger, phrases.items
    found: Match | None = None
    tried: set[int] = set()
    for word in words:
        for index in by_trigger.get(word, ()):
            if index in tried:
                continue
            tried.add(index)
            item = items[index]
            hit = item.regex.search(key)
            while hit is not None:
                if item.negations is None or not _negated(key, hit.start(), item.negations):
                    match = Match(item.rule, hit.group(), MatchMode.PHRASE, item.language)
                    if item.rule.intent is Intent.OPT_OUT:
                        return match
                    found = found or match
                    break
                hit = item.regex.search(key, hit.end())
    return found


def _negated(key: str, start: int, negations: re.Pattern[str]) -> bool:
    """A negation cue among the few words before ``start``, in the same clause."""
    clause = _CLAUSE_END.split(key[:start])[-1]
    return negations.search(" ".join(clause.split()[-_NEGATION_WINDOW:])) is not None


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
        language=match.language,
        match=match.mode,
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
        language=match.language,
        match=match.mode,
    )
