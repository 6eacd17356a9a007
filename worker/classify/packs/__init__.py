"""The built-in language packs, one module per language, and their registry.

Each pack is data (:class:`~worker.classify.packs.base.LanguagePack`): keywords, phrases, courtesy and
sentence words, negation cues and replies of one language. Adding a language is a module here,
a :class:`~worker.model.Language` member and a line in :data:`PACKS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from worker.classify.packs.base import KeywordGroup, LanguagePack, Phrase
from worker.classify.packs.de import GERMAN
from worker.classify.packs.en import ENGLISH
from worker.classify.packs.es import SPANISH
from worker.classify.packs.fr import FRENCH
from worker.classify.packs.it import ITALIAN
from worker.classify.packs.nl import DUTCH
from worker.classify.packs.pt import PORTUGUESE
from worker.model import Language

__all__ = [
    "DEFAULT_LANGUAGES",
    "DUTCH",
    "ENGLISH",
    "FRENCH",
    "GERMAN",
    "ITALIAN",
    "PACKS",
    "PORTUGUESE",
    "SPANISH",
    "KeywordGroup",
    "LanguagePack",
    "Phrase",
]

PACKS: Mapping[Language, LanguagePack] = MappingProxyType(
    {pack.language: pack for pack in (ENGLISH, SPANISH, FRENCH, GERMAN, PORTUGUESE, ITALIAN, DUTCH)}
)

#: Every pack, English first. A subscriber's language is unknown and a missed opt-out is a legal
#: risk, so all packs apply unless an account narrows them; the order decides the language (and so
#: the reply) of a keyword that several packs share: STOP and INFO are English unless an account
#: puts another language first.
DEFAULT_LANGUAGES: tuple[Language, ...] = tuple(PACKS)
