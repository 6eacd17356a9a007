"""Text normalization for keyword matching.

A subscriber's "Stop.", " STOP!! 😡", "“stop”" and the full-width "ＳＴＯＰ" all mean STOP. We fold
them to one key so a keyword table is a plain dict lookup of the whole message: no substring
matching, so "Don't stop!" stays "don't stop" and never equals "stop".

Steps: Unicode NFKC (full-width and compatibility forms to their plain letters), drop invisible
format characters (zero-width spaces, joiners, BOM, variation selectors), case-fold, typographic
apostrophes to ``'``, trim
whitespace, quotes, punctuation and emoji at both ends, and collapse inner whitespace runs to
one space. Pure ASCII text, the common case, skips the Unicode steps.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable

_ASCII_EDGE = string.whitespace + string.punctuation
#: Invisible format characters (zero-width spaces and joiners, BOM, variation selectors...). A
#: character-class regex: ``str.translate`` with a dict costs ~8x more per message.
_INVISIBLE = re.compile("[\u00ad\u034f\u180e\u200b-\u200f\u2060\ufe0e\ufe0f\ufeff]")
#: Typographic apostrophes, folded to ``'`` so "don’t" and "m’envoyer" read like "don't".
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc\u2032]")
#: ASCII punctuation and whitespace to spaces, for :func:`tokens` and the classifier's inlined copy
#: of it (bytes.translate runs in C).
SEPARATORS = bytes.maketrans(
    (string.punctuation + string.whitespace).encode(), b" " * len(string.punctuation + string.whitespace)
)


def normalize(text: str) -> str:
    """Fold ``text`` to its matching key (see the module docstring for the steps)."""
    if text.isascii():
        if text.isprintable():
            # Printable ASCII is letters, digits, punctuation and " ": once the edges are
            # stripped both ends are alphanumeric, so only a double space is left to fold.
            text = text.casefold().strip(_ASCII_EDGE)
            return text if "  " not in text else " ".join(text.split())
        text = text.casefold()
    else:
        # Invisible characters go first so NFKC composes across them, and NFKC runs again after
        # case-folding ("ß" folds to "ss", which may compose anew): normalize(normalize(t)) ==
        # normalize(t). The second pass is nearly always a quick check that finds nothing to do.
        if not _surely_visible(text):
            text = _INVISIBLE.sub("", text)
        text = unicodedata.normalize("NFKC", text).casefold()
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        if "\u2019" in text or "\u2018" in text or "\u02bc" in text or "\u2032" in text:
            text = _APOSTROPHES.sub("'", text)
    text = text.strip(_ASCII_EDGE)
    if text and not (text[0].isalnum() and text[-1].isalnum()):
        text = _trim(text)
    # Collapsing whitespace is a no-op unless there is a double space or a whitespace character
    # other than " " (every such character is non-printable): skip the split and join then.
    if "  " not in text and text.isprintable():
        return text
    return " ".join(text.split())


def _surely_visible(text: str) -> bool:
    """No character :data:`_INVISIBLE` removes, decided with C-speed checks that cost half the
    regex: every one of them is non-printable except the three combining marks tested by name."""
    return text.isprintable() and "\ufe0f" not in text and "\ufe0e" not in text and "\u034f" not in text


def tokens(key: str) -> list[bytes]:
    """The words of a normalized text as UTF-8 bytes, ASCII punctuation dropped ("stop, pls." → stop, pls).

    Bytes rather than str because ``bytes.translate`` with a 256-byte table costs a few tens of
    nanoseconds where ``str.translate`` costs microseconds: this runs for every message that is not
    an exact keyword. Non-ASCII characters (accents, emoji) pass through unchanged.
    """
    return key.encode().translate(SEPARATORS).split()


def strip_accents(text: str) -> str:
    """``text`` without combining marks ("arrêt" → "arret"): subscribers often type no accents."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _trim(text: str) -> str:
    r"""Drop everything but letters and digits at both ends: emoji, symbols, any script's quotes.

    A loop from each end, not a regex: ``[\W_]+$`` is tried at every position of the message.
    """
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


#: Bytes in a :func:`word_bits` bitmap: 2**16 bits.
BITMAP_BYTES = 8192
_WORD_WIDTH = 16


#: Bytes in a :func:`key_bits` bitmap: 2**20 bits (a whole-message bitmap holds tens of thousands
#: of mangled keywords: 2**16 would be half full).
KEY_BITMAP_BYTES = 131072
_KEY_WIDTH = 20


def _fnv1a(data: bytes) -> int:
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def probes(h: int, width: int) -> tuple[int, int]:
    """The two bits of a bitmap of ``2**width`` bits that stand for the 32-bit hash ``h``: ``h``
    folded, and the top bits of its Fibonacci product; ``maybe_in`` in ``fold.h`` tests both.
    Measured on the normal mix's chat: one probe let 1 chat word in 200 hit the default gate (356
    words) and 1 message in 27 the key bitmap (37,800 keys), each sending it to the full path."""
    return (h ^ (h >> width)) & ((1 << width) - 1), ((h * 2654435769) & 0xFFFFFFFF) >> (32 - width)


def word_probes(word: bytes) -> tuple[int, int]:
    """The bits of ``word`` (its UTF-8 bytes) in a :func:`word_bits` bitmap."""
    return probes(_fnv1a(word), _WORD_WIDTH)


def key_probes(key: str) -> tuple[int, int]:
    """The bits of a whole key in a :func:`key_bits` bitmap."""
    return probes(_fnv1a(key.encode()), _KEY_WIDTH)


def _bitmap(size: int, positions: Iterable[tuple[int, int]]) -> bytes:
    bits = bytearray(size)
    for pair in positions:
        for h in pair:
            bits[h >> 3] |= 1 << (h & 7)
    return bytes(bits)


def key_bits(keys: Iterable[str]) -> bytes:
    """A bitmap of whole keys: a key with either of its bits clear is surely not one of them."""
    return _bitmap(KEY_BITMAP_BYTES, map(key_probes, keys))


def word_bits(words: Iterable[bytes]) -> bytes:
    """A bitmap of ``words`` for :func:`fold`: a word with either of its bits clear is surely not
    one of them (a chat word hits the default gate's about 1 time in 10,000)."""
    return _bitmap(BITMAP_BYTES, map(word_probes, words))


def _no_fold(text: str, bits: bytes) -> tuple[str, list[bytes], bool] | None:
    return None


fold: Callable[[str, bytes], tuple[str, list[bytes], bool] | None]
"""``(key, words, maybe)`` for printable ASCII text, in one C pass (``worker/classify/_fold.c``):
``key`` is :func:`normalize`'s, ``words`` :func:`tokens`' of it, and ``maybe`` is False when no
word is in the set ``bits`` was built from (:func:`word_bits`), so the caller skips the set
lookups, which hash every word. None for any other text, and always None when the extension was
not built (no C compiler at install time): callers then take the Python steps.

Measured on the chat of ``make bench-classify``: the key and words take about 0.2 µs for a
40-character message against 0.65 µs for the two Python steps, and the bitmap spares four chat
messages in five the 0.25 µs of hashing their words for the set. ``tests/unit/classify/test_fold.py``
holds the C and Python results equal."""
try:
    from worker.classify._fold import fold

    COMPILED = True
except ImportError:  # built without a C compiler
    fold = _no_fold
    COMPILED = False
