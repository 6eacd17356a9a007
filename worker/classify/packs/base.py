"""What a language pack is: its types, and the helpers the pack modules write their phrases with.

A pack holds, for one language:

* keyword rules per intent, each with a match mode. Unambiguous keywords (STOP, ARRET, BAJA,
  ABMELDEN...) match in ``leading`` mode, so "STOP ACME" and "stop please" opt out. Words that are
  also everyday words, here or in another pack ("fin", "alto", "basta", "ende", "alta"), match in
  leading mode without brands: alone or with courtesy words only ("ALTO por favor"), so "fin de
  semana" and "alto riesgo" are chat. "para" (also a preposition) matches only alone (``exact``).
  Yes/no words ("si", "ja", "yes", "no") are never keywords: they answer every other question too.
  Marketing groups ("STOP MARKETING", "STOP PUB", "BAJA PUBLICIDAD", "START PROMOS") are keywords
  of two words with ``category`` ``marketing``: the subscriber stops (or resumes) marketing only.
* ``courtesy``: words that may follow or precede a leading keyword ("please", "por favor", "merci").
* ``ordinary``: words that show a leading keyword starts an ordinary sentence ("stop *by* later",
  "cancel *my* order", "start *date*", "arrêt *de bus*"): one of them after the keyword vetoes it.
* ``phrases``: regular expressions of phrased requests ("please remove me from your list", "no
  more texts", "ne m'envoyez plus de SMS"), each with trigger words, one of which is in every text
  the expression can match: the classifier runs the expressions only when a trigger is present.
* ``negations``: cues that, just before a phrase in the same clause, turn it around ("I don't want
  to opt out", "no me den de baja", "je ne veux pas me désabonner").
* ``replies``: confirmation and help texts in the language (each at most 160 characters once
  ``{sender}`` is filled in, as the Canadian CWTA rules require for STOP/ARRET).

Texts here are in normalized form (lower case, single spaces, ``'`` for apostrophes) because the
classifier matches normalized text. Accent-less spellings of keywords and trigger words
("arret", "desabonner") are added when the rules are compiled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from worker.classify.normalize import strip_accents, tokens
from worker.model import Category, Intent, Language, MatchMode


@dataclass(frozen=True, slots=True)
class KeywordGroup:
    """Keywords of one intent that share a rule name and a match mode."""

    name: str
    intent: Intent
    mode: MatchMode
    keywords: tuple[str, ...]
    all_channels: bool = False
    brands: bool = True
    """Whether a leading keyword may be followed by an unknown word (a brand: "STOP ACME"). False
    for words that are also everyday words ("alto", "fin", "basta"): only courtesy words, numbers
    and emoji may follow them ("ALTO por favor"), so "fin semana" and "alto riesgo" stay chat."""
    category: Category = Category.ALL
    """What the group's opt-outs block, or which blocks its opt-ins lift: ``marketing`` for
    "STOP MARKETING" and "START PROMOS", whose leading keyword is longer than "STOP" or "START" and
    so wins over it (:func:`worker.classify.rules._leads` tries the longest first)."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """A phrased request: a regular expression on normalized text and its trigger words."""

    intent: Intent
    pattern: str
    triggers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LanguagePack:
    language: Language
    keywords: tuple[KeywordGroup, ...]
    phrases: tuple[Phrase, ...]
    courtesy: frozenset[str]
    ordinary: frozenset[str]
    conjunctions: frozenset[str]
    """"and": after a leading keyword only when a courtesy word follows ("STOP please and thank you")."""
    negations: str
    """A regular expression matching one negation cue word (searched in a few words of text)."""
    replies: Mapping[Intent, str]
    wrong_number: tuple[Phrase, ...] = ()
    """Opt-out phrases of wrong-number replies ("wrong number", "I'm not Maria"): their own rule
    (``wrong_number``), on by default, switched off per scope by a rules file."""


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def pairs(heads: str, nouns: str) -> tuple[str, ...]:
    """Every "HEAD NOUN" keyword of two space-separated word lists: ``pairs("STOP", "PUB PROMOS")``
    is ("STOP PUB", "STOP PROMOS"). The marketing groups are written this way."""
    return tuple(f"{head} {noun}" for head in heads.split() for noun in nouns.split())


def any_of(words: tuple[str, ...]) -> str:
    """A regex group matching any of ``words``: one tuple is both a phrase's alternatives and its
    triggers, so the two cannot drift apart."""
    return "(?:" + "|".join(map(re.escape, words)) + ")"


def heads(
    intent: Intent, literals: str, rest: str, triggers: tuple[str, ...] | None = None
) -> tuple[Phrase, ...]:
    """Phrases that start with one of the ``literals`` ("|"-separated heads) and go on with ``rest``.

    A literal first and the word-boundary check after it (a look-behind) lets the regex engine
    jump from one occurrence of the literal to the next instead of trying every position: about
    ten times faster than ``\b(?:a|b) ...``. Each head (and its accent-less spelling) is its own
    phrase, triggered by its first word.
    """
    out = []
    for head in literals.split("|"):
        for variant in dict.fromkeys((head, strip_accents(head))):
            literal = re.escape(variant)
            trigger_words = triggers or (tokens(variant)[0].decode(),)
            out.append(Phrase(intent, rf"{literal}(?<!\w{literal}){rest}", trigger_words))
    return tuple(out)
