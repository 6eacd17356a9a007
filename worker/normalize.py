"""Text normalization for keyword matching.

A subscriber's "Stop.", " STOP!! 😡", "“stop”" and the full-width "ＳＴＯＰ" all mean STOP. We fold
them to one key so a keyword table is a plain dict lookup of the whole message: no substring
matching, so "Don't stop!" stays "don't stop" and never equals "stop".

Steps: Unicode NFKC (full-width and compatibility forms to their plain letters), drop invisible
format characters (zero-width spaces, joiners, BOM, variation selectors), case-fold, trim
whitespace, quotes, punctuation and emoji at both ends, and collapse inner whitespace runs to
one space. Pure ASCII text, the common case, skips the Unicode steps.
"""

from __future__ import annotations

import re
import string
import unicodedata

_ASCII_EDGE = string.whitespace + string.punctuation
#: Everything that is not a letter or digit, at either end (emoji, symbols, any script's quotes).
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFE0E, 0xFE0F, 0xFEFF]
)


def normalize(text: str) -> str:
    """Fold ``text`` to its matching key (see the module docstring for the steps)."""
    if text.isascii():
        text = text.casefold()
    else:
        # Invisible characters go first so NFKC composes across them, and NFKC runs again after
        # case-folding ("ß" folds to "ss", which may compose anew): normalize(normalize(t)) ==
        # normalize(t).
        text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
        text = unicodedata.normalize("NFKC", text.casefold())
    text = text.strip(_ASCII_EDGE)
    if text and not (text[0].isalnum() and text[-1].isalnum()):
        text = _EDGE.sub("", text)
    return " ".join(text.split())
