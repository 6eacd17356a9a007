"""What the batch step's chat screen must know of the rules: bitmaps of every word set that can
make :func:`worker.classify.decide.classify` look past its first lookup.

The screen (``worker/stream/_screen.c``) passes over printable-ASCII chat in C and sends every
other record to the full path. It may only pass over a text that ``classify`` would surely call
chat with no doubt, so each bitmap is a superset test of one of ``classify``'s steps:

========== ================================================= ==========================================
bitmap     holds                                              a set bit sends the text to classify for
========== ================================================= ==========================================
keys       every exact key and mangled spelling (20-bit)      the exact, fuzzy and split lookups
gate       phrase trigger words and opt-out commands          the phrase and complaint steps
openers    first words of leading keywords, courtesy words    the leading step
prefixes   prefixes of one-word keywords                      the split-keyword look of short messages
courtesy   courtesy words                                     the mangled-first-word look
========== ================================================= ==========================================

A hash collision only costs a chat message the full path; a word missing from a bitmap would cost
a missed keyword, which ``tests/unit/stream/test_screen.py`` checks cannot happen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.classify.normalize import key_bits, word_bits

if TYPE_CHECKING:
    from worker.classify.rules import RuleSet

ChatBitmaps = tuple[bytes, bytes, bytes, bytes, bytes]


def build_chat_bitmaps(rules: RuleSet) -> ChatBitmaps:
    """The screen's bitmaps for ``rules``, in the order ``_screen.c`` reads them."""
    return (
        key_bits([*rules.table, *rules.fuzzy]),
        rules.gate_bits,
        word_bits(rules.openers),
        word_bits(rules.prefixes),
        word_bits(rules.courtesy),
    )
