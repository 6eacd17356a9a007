"""Mangled keywords: the spellings within one edit of a keyword, built once per rule set.

Subscribers type "stpo", "sotp", "unsubscibe", "cancle", "sstopp". A keyword of four or more
letters is also recognized

* within one edit: a letter deleted, inserted or substituted, or two adjacent letters swapped;
* with one or two of its letters doubled ("sstopp", "quitt").

Each such spelling is precomputed into a dict when the rule set is compiled, so the classifier pays
one dict lookup per short message and never computes a distance at run time. Spellings that are
real words of an enabled language ("stoop", "step", "top", "quite", "stap", "stoep") are *guarded*:
they never match, and a message that is one of them goes to the review queue instead (see
:mod:`worker.classify.packs.guards` for the word lists and how they were made). A spelling within
one edit of two keywords of different intents ("stat": start? stop?) is guarded too.

Only the built-in packs' unambiguous keywords are fuzzed: those that take a brand in leading mode.
Everyday words ("fin", "basta", "ende", "para") are not: their neighbours are everyday words too.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

#: Keywords shorter than this are never fuzzed: "end" is one edit from "and", "send", "ends".
MIN_LETTERS = 4
#: Keywords that are also everyday words ("fin", "basta", "arrêter") are fuzzed from this length on.
MIN_EVERYDAY_LETTERS = 6
_ASCII = string.ascii_lowercase


@dataclass(frozen=True, slots=True)
class Fuzzy:
    """What a mangled spelling stands for: ``keyword`` (normalized), or a guarded real word."""

    keyword: str
    guarded: bool
    """A real word of an enabled language, or near keywords of two intents: never matches."""


def variants(keyword: str) -> Iterator[str]:
    """Every spelling within one edit of ``keyword``, and with one or two of its letters doubled."""
    letters = _ASCII + "".join(c for c in keyword if c not in _ASCII and c.isalpha())
    n = len(keyword)
    for i in range(n):
        yield keyword[:i] + keyword[i + 1 :]  # deletion
        for c in letters:
            if c != keyword[i]:
                yield keyword[:i] + c + keyword[i + 1 :]  # substitution
        if i + 1 < n and keyword[i] != keyword[i + 1]:
            yield keyword[:i] + keyword[i + 1] + keyword[i] + keyword[i + 2 :]  # adjacent swap
    for i in range(n + 1):
        for c in letters:
            yield keyword[:i] + c + keyword[i:]  # insertion (a single doubling is one)
    for i in range(n):
        for j in range(i + 1, n):
            yield keyword[: i + 1] + keyword[i : j + 1] + keyword[j:]  # two letters doubled


def table(
    keywords: Iterable[tuple[str, object]], exact: Mapping[str, object], guards: frozenset[str]
) -> dict[str, Fuzzy]:
    """The mangled spellings of ``keywords`` ((normalized keyword, intent) pairs).

    ``exact`` holds the rule set's own keys (a spelling that is a keyword is that keyword) and
    ``guards`` the real words that must not match.
    """
    out: dict[str, Fuzzy] = {}
    intents: dict[str, object] = {}
    for keyword, intent in keywords:
        if len(keyword) < MIN_LETTERS or not keyword.isalpha():
            continue
        for variant in variants(keyword):
            if variant in exact or variant == keyword:
                continue
            seen = intents.setdefault(variant, intent)
            if variant in guards or seen is not intent:
                out[variant] = Fuzzy(out[variant].keyword if variant in out else keyword, True)
            elif variant not in out:
                out[variant] = Fuzzy(keyword, False)
    return out
