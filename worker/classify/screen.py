"""What the batch step's chat screen must know of the rules: bitmaps of every word set that can
make :func:`worker.classify.decide.classify` look past its first lookup.

The screen (``worker/stream/_screen.c``) passes over chat in C and sends every other record to
the full path: printable-ASCII text, and text whose other characters :func:`fold_table` folds
(most Latin, Cyrillic, Greek, CJK and Hangul chat, emoji). It may only pass over a text that
``classify`` would surely call chat with no doubt, so each bitmap is a superset test of one of
``classify``'s steps:

========== ================================================= ==========================================
bitmap     holds                                              a set bit sends the text to classify for
========== ================================================= ==========================================
keys       every exact key and mangled spelling (20-bit)      the exact and fuzzy lookups; the short
                                                              look's split and mangled first word
leaders    first words of leading keywords                    the leading step (after courtesy words)
prefixes   prefixes of one-word keywords                      the short look's split keyword
courtesy   courtesy words                                     the leading, set-apart and short looks
triggers   phrase trigger words                               the phrase step
commands   opt-out commands                                   the complaint step, when set apart
objects    what a command may be about ("stop it")            the complaint step
========== ================================================= ==========================================

The screen mirrors each step's own conditions on these sets: a leading keyword's first word only
after courtesy words; a command only when punctuation, an object, courtesy words or capitals set
it apart (``decide._set_apart``), or when written in capitals (the review queue's doubt); a short
message's split or mangled keyword only when the words joined, or the first word, may be a key.
Chat that merely holds a command ("when does the sale end?", "Stop by the front desk") is passed
over. On the benchmark's normal mix (``bench.workload``, 50,000 records) the chat that reached
``classify`` went from 18,392 records to 4,153 when the screen began to read these conditions.

A hash collision only costs a chat message the full path; a word missing from a bitmap would cost
a missed keyword, which ``tests/unit/stream/test_screen.py`` checks cannot happen.
"""

from __future__ import annotations

import array
import functools
import re
import unicodedata
from typing import TYPE_CHECKING

from worker.classify.normalize import key_bits, word_bits

if TYPE_CHECKING:
    from worker.classify.rules import RuleSet

ChatBitmaps = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]
#: A word bitmap every word may be in.
_EVERY_WORD = b"\xff" * len(word_bits(()))


def build_chat_bitmaps(rules: RuleSet) -> ChatBitmaps:
    """The screen's bitmaps for ``rules``, in the order ``_screen.c`` reads them. Builds the fold
    table too (once per process), so the classifier's warm-up pays for it, not its first batch."""
    from worker.classify.decide import SCREEN_OBJECTS  # decide imports rules, which imports us

    fold_table()
    triggers = rules.phrases.triggers if rules.phrases is not None else frozenset()
    return (
        key_bits([*rules.table, *rules.fuzzy]),
        word_bits(rules.first),
        word_bits(rules.prefixes),
        word_bits(rules.courtesy),
        word_bits(triggers) if all(_capital_pair(c) for c in rules.commands) else _EVERY_WORD,
        word_bits(rules.commands),
        word_bits(SCREEN_OBJECTS),
    )


def _capital_pair(command: bytes) -> bool:
    """Whether an ASCII command written in capitals has two in a row: how the screen finds one in a
    text (``capital_pair`` in ``_screen.c``); a command without (a number, "e2e") makes the screen
    send every text with a command word to classify, through an all-set triggers bitmap. A command
    beyond ASCII is never a word of an ASCII text, and texts beyond ASCII with one always go."""
    return not command.isascii() or re.search(rb"[a-z]{2}", command) is not None


#: Code points below this have an entry in :func:`fold_table` (the BMP and the first
#: supplementary plane, where chat's emoji are); any other character sends a text to classify().
FOLD_LIMIT = 0x20000
#: Set in a :func:`fold_table` entry whose folded character is a letter or a digit (``isalnum``).
FOLD_ALNUM = 0x80000000
#: Characters :func:`worker.classify.normalize.normalize` removes or rewrites whatever they are
#: next to, and the Hangul jamo that compose with a syllable before them (an algorithmic
#: composition, in no decomposition table).
_NEVER = frozenset(
    [*"\u00ad\u034f\u180e\u200b\u200c\u200d\u200e\u200f\u2060\ufe0e\ufe0f\ufeff", *"\u2018\u2019\u02bc\u2032"]
    + [chr(c) for r in ((0x1100, 0x1200), (0xA960, 0xA980), (0xD7B0, 0xD800)) for c in range(*r)]
)


def _composes_second(limit: int) -> frozenset[int]:
    """Characters that end a canonical two-character decomposition: NFKC may compose them with
    the character before them ("e" + U+0301 -> "é")."""
    seconds = set()
    for code in range(limit):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(int(parts[1], 16))
    return frozenset(seconds)


def _inert(char: str, seconds: frozenset[int]) -> bool:
    """A character NFKC and case folding leave as it is wherever it stands, that is visible and no
    space, and that normalize() neither removes nor rewrites."""
    return (
        char.isprintable()
        and not char.isspace()
        and char not in _NEVER
        and unicodedata.combining(char) == 0
        and ord(char) not in seconds
        and unicodedata.normalize("NFKC", char) == char
        and char.casefold() == char
    )


@functools.cache
def fold_table() -> bytes:
    """For each code point from 0x80 below :data:`FOLD_LIMIT`, as a 32-bit entry (native order):
    the character :func:`~worker.classify.normalize.normalize` folds it to when it stands in any
    text of such characters and printable ASCII, or 0 when it cannot be folded alone (then the
    screen leaves the text to classify()); :data:`FOLD_ALNUM` set when that character is a letter
    or a digit (normalize() trims the others at both ends).

    A text made only of such characters is in NFKC (none decomposes, none composes with its
    neighbour: no combining mark, no second half of a canonical pair, no conjoining jamo), so its
    normalized key is its case-folded self, trimmed and with runs of spaces collapsed, which
    ``_screen.c`` computes in one pass; ``tests/unit/stream/test_screen.py`` holds it against
    normalize() and classify(). Built once per process (about 0.3 s).
    """
    seconds = _composes_second(FOLD_LIMIT)
    entries = array.array("I", bytes(4 * FOLD_LIMIT))
    for code in range(0x80, FOLD_LIMIT):
        char = chr(code)
        if not (char.isprintable() and unicodedata.combining(char) == 0 and code not in seconds):
            continue
        if char in _NEVER or unicodedata.normalize("NFKC", char) != char:
            continue
        folded = char.casefold()
        if len(folded) != 1 or ord(folded) < 0x80 or not _inert(folded, seconds):
            continue
        entries[code] = ord(folded) | (FOLD_ALNUM if folded.isalnum() else 0)
    return entries.tobytes()
