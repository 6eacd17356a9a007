"""Keyword rules, pure: the rule types, per-account/subaccount/sender layering, and compilation.

Each distinct layer stack compiles into a :class:`RuleSet`: a dict keyed by normalized keyword
(the exact fast path: one lookup), a dict keyed by the first word of leading keywords, and the
phrases' regular expressions keyed by the trigger words that gate them. Resolution is cached:
accounts without overrides share the base set and pay one set-membership test. Reading and
validating a rules file is :mod:`worker.classify.rulesfile`'s job; nothing here does I/O.

Layers, least specific first: built-in (the language packs selected by ``languages``), the file's
top level, account, subaccount, sender. The most specific layer that sets ``languages`` decides
which packs apply and which language comes first (the language of a keyword several packs share,
and of custom rules that name none).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from worker.classify import fuzzy
from worker.classify.normalize import BITMAP_BYTES, normalize, strip_accents, tokens, word_bits
from worker.classify.packs import DEFAULT_LANGUAGES, ENGLISH, PACKS, LanguagePack, Phrase
from worker.classify.packs.guards import GUARDS
from worker.classify.screen import ChatBitmaps, build_chat_bitmaps
from worker.events.address import Countries, canonical_sender
from worker.model import Category, Intent, Language, MatchMode, ScopeLevel

ReplyTexts = Mapping[str, str | None]
"""Reply texts by language code, ``"*"`` for any other language; ``None`` means "no reply"."""
Reply = str | ReplyTexts | None
"""A reply as configured: one text (or None: no reply) for every language, or texts per language."""

ANY_LANGUAGE = "*"


def reply_texts(reply: Reply) -> ReplyTexts:
    """``reply`` as texts per language: a plain text or None stands for every language (``"*"``)."""
    if reply is None or isinstance(reply, str):
        return {ANY_LANGUAGE: reply}
    return reply


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    intent: Intent
    keywords: tuple[str, ...]
    level: ScopeLevel = ScopeLevel.ACCOUNT
    all_channels: bool = False
    reply: Reply = None
    """Reply for this rule when :attr:`has_reply_override`; otherwise the layer's reply applies."""
    has_reply_override: bool = False
    """True when the rules file set ``reply`` on this rule (possibly to null: no reply)."""
    match: MatchMode = MatchMode.LEADING
    language: str | None = None
    """ISO 639-1 code of the keywords; ``None``: the rule set's first language."""
    patterns: tuple[Phrase, ...] = ()
    """Built-in phrased requests (regular expressions); rules files give literal phrases as keywords."""
    brands: bool = True
    """Leading mode: whether an unknown word (a brand) may follow the keyword; False for built-in
    keywords that are also everyday words (see :class:`worker.classify.packs.KeywordGroup`)."""
    category: Category = Category.ALL
    """Opt-out: what the block stops ("STOP MARKETING" blocks marketing only). Opt-in: which blocks
    it lifts (``all``: every block, whatever its category; ``marketing``: marketing blocks only)."""


@dataclass(frozen=True, slots=True)
class Match:
    """A message that matched ``keyword`` (as written in the rules, or the phrase found) of ``rule``."""

    rule: Rule
    keyword: str
    mode: MatchMode = MatchMode.EXACT
    """How the message matched: the whole message, a leading keyword, or a phrase inside it."""
    language: str = Language.EN
    """The rule's language (the rule set's first language when the rule names none)."""
    fuzzy: bool = False
    """The message held a mangled spelling of the keyword ("stpo", "sstopp", "S top")."""


@dataclass(frozen=True, slots=True)
class Lead:
    """A leading-mode keyword as words, for the first-word lookup."""

    words: tuple[bytes, ...]
    match: Match


@dataclass(frozen=True, slots=True)
class PhraseRule:
    """One phrase of a rule set: its own compiled expression, its rule and its language's negations."""

    regex: re.Pattern[str]
    rule: Rule
    language: str
    negations: re.Pattern[str] | None
    found: dict[str, Match] = field(default_factory=dict, init=False, compare=False, repr=False)
    """The matches this phrase made, by the text found: one object per text, so a keyword MO's
    decision is cached per match object (:attr:`RuleSet.plans`). Bounded (:data:`PHRASE_TEXTS_MAX`)."""

    def match(self, found: str) -> Match:
        """The match of this phrase for the text ``found``: the same object for the same text."""
        match = self.found.get(found)
        if match is None:
            match = Match(self.rule, found, MatchMode.PHRASE, self.language)
            if len(self.found) < PHRASE_TEXTS_MAX:
                self.found[found] = match
        return match


#: The texts a phrase keeps a match for (:meth:`PhraseRule.match`): a phrase's expression finds a
#: handful of forms ("remove me", "stop sending"); a wilder one gets a new match past these.
PHRASE_TEXTS_MAX = 256


@dataclass(frozen=True, slots=True)
class Phrases:
    """The phrases of a rule set, reachable by trigger word.

    One expression per phrase, run only when one of its trigger words is in the message: a single
    alternation of every phrase would be tried at every position of every message that has any
    trigger word, and costs a hundred times more.
    """

    by_trigger: Mapping[bytes, tuple[int, ...]]
    """Trigger word → indexes into :attr:`items`, in rule order."""
    items: tuple[PhraseRule, ...]
    triggers: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The compiled rules that apply to one (account, subaccount, sender).

    Built once per distinct layer stack (:meth:`RuleBook.resolve` caches it), never per message:
    the exact-keyword dict, the first-word dict of leading keywords, the word sets that
    decide what may surround a leading keyword, and one regular expression for all phrases.
    """

    table: Mapping[str, Match]
    """Normalized whole message → match: every keyword, and the mangled spellings of the packs'
    keywords that are no real word (``Match.fuzzy``)."""
    replies: Mapping[Intent, ReplyTexts]
    languages: tuple[str, ...] = (Language.EN,)
    first: Mapping[bytes, tuple[Lead, ...]] = field(default_factory=dict)
    """One-word leading keywords by their word; every first word of a leading keyword is a key
    (with no leads when only longer keywords start with it)."""
    longer: Mapping[bytes, Mapping[bytes, tuple[Lead, ...]]] = field(default_factory=dict)
    """Leading keywords of two words or more by their first word, then their second, longest first:
    "stop marketing", "stop all" and a dozen more share STOP's first word, and a lookup on the
    second word spares "STOP ACME" from trying each of them."""
    keyword_words: Mapping[bytes, Intent] = field(default_factory=dict)
    """Single-word keywords and their intent: "stop stop" is a STOP, "stop start" is nothing."""
    courtesy: frozenset[bytes] = frozenset()
    ordinary: frozenset[bytes] = frozenset()
    conjunctions: frozenset[bytes] = frozenset()
    """"and" words, accepted between courtesy words ("stop please and thank you")."""
    phrases: Phrases | None = None
    openers: frozenset[bytes] = frozenset()
    """First words that can start a leading match (a leading keyword's first word or a courtesy
    word): one set lookup turns away most chat before any leading-keyword work."""
    commands: frozenset[bytes] = frozenset()
    """Single-word opt-out keywords that take a brand (STOP, UNSUBSCRIBE, BAJA...): those that,
    set apart by punctuation or capitals, opt out with a complaint around them."""
    command_forms: Mapping[bytes, tuple[str, str]] = field(default_factory=dict)
    """Each of :attr:`commands` as text and in capitals ("STOP"): decoded once here, not per message."""
    fuzzy: Mapping[str, tuple[fuzzy.Fuzzy, Match]] = field(default_factory=dict)
    """Mangled spellings of the packs' keywords (:mod:`worker.classify.fuzzy`) and the match each
    stands for, guarded ones (real words: never a match) too, for the review queue. A dict of its
    own rather than entries of :attr:`table`: tens of thousands of entries there would slow every
    message's lookup (cache misses), where this one is only read for short one-word messages."""
    fuzzy_chars: int = 0
    """The longest spelling in :attr:`fuzzy`: longer messages skip the lookup."""
    gate: frozenset[bytes] = frozenset()
    """The phrases' trigger words and :attr:`commands`: one set operation turns away most chat
    before both the phrase and the complaint steps."""
    gate_bits: bytes = b"\xff" * BITMAP_BYTES
    """:attr:`gate` as a bitmap for :func:`~worker.classify.normalize.fold`: printable ASCII chat
    with no gate word skips that set operation too. All bits set by default: nothing is skipped."""
    prefixes: frozenset[bytes] = frozenset()
    """Prefixes of one-word keywords: the first part of a split keyword ("S top", "st op")."""
    default_country: str | None = None
    """ISO 3166 alpha-2 country of national subscriber numbers ("07700 900123"), or None: the
    addresses of keyword MOs are canonicalized with it (:mod:`worker.events.address`)."""
    plans: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    """What a keyword MO's records take from its match: by ``(id(match), no subaccount)`` its shape
    plan, and for a match whose reply cannot have one, by ``(id(match), account, subaccount,
    sender, channel)``; filled by :func:`worker.classify.decide.decide_encoded`, gone with the rule
    set (a rules reload builds new ones)."""

    def reply_text(self, match: Match) -> str | None:
        """The reply template for ``match``: its language, else the set's first language, else ``*``."""
        if match.rule.has_reply_override:
            found, text = _pick(reply_texts(match.rule.reply), match.language, self.languages[0])
            if found:
                return text
        texts = self.replies.get(match.rule.intent)
        if texts is None:
            return None
        return _pick(texts, match.language, self.languages[0])[1]


def _pick(texts: ReplyTexts, language: str, default: str) -> tuple[bool, str | None]:
    for key in (language, default, ANY_LANGUAGE):
        if key in texts:
            return True, texts[key]
    return False, None


#: The rule name of the built-in wrong-number phrases ("wrong number", "I'm not Maria"): an opt-out
#: on by default, switched off per scope by a rules file's ``"wrong_number": false``.
WRONG_NUMBER = "wrong_number"


def _pack_rules(pack: LanguagePack) -> tuple[Rule, ...]:
    rules = [
        Rule(
            g.name,
            g.intent,
            g.keywords,
            all_channels=g.all_channels,
            match=g.mode,
            language=pack.language,
            brands=g.brands,
            category=g.category,
        )
        for g in pack.keywords
    ]
    if pack.wrong_number:
        rules.append(
            Rule(
                WRONG_NUMBER,
                Intent.OPT_OUT,
                (),
                match=MatchMode.PHRASE,
                language=pack.language,
                patterns=pack.wrong_number,
            )
        )
    for intent, name in (
        (Intent.OPT_OUT, "stop_phrase"),
        (Intent.OPT_IN, "start_phrase"),
        (Intent.HELP, "help_phrase"),
    ):
        patterns = tuple(p for p in pack.phrases if p.intent is intent)
        if patterns:
            rules.append(
                Rule(name, intent, (), match=MatchMode.PHRASE, language=pack.language, patterns=patterns)
            )
    return tuple(rules)


#: The rules of each language pack, built once so every rule set shares the same Rule objects.
PACK_RULES: Mapping[Language, tuple[Rule, ...]] = MappingProxyType(
    {language: _pack_rules(pack) for language, pack in PACKS.items()}
)
#: The English pack's rules: the engine's defaults before language packs existed.
BUILTIN_RULES: tuple[Rule, ...] = PACK_RULES[Language.EN]

BUILTIN_REPLIES: Mapping[Intent, str | None] = MappingProxyType(dict(ENGLISH.replies))
"""The English replies, also used for any language without a text of its own."""


def _builtin_replies() -> Mapping[Intent, ReplyTexts]:
    out: dict[Intent, ReplyTexts] = {}
    for intent in (Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP):
        texts: dict[str, str | None] = {ANY_LANGUAGE: ENGLISH.replies[intent]}
        texts.update({language: pack.replies[intent] for language, pack in PACKS.items()})
        out[intent] = MappingProxyType(texts)
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Layer:
    inherit: bool
    rules: tuple[Rule, ...]
    replies: Mapping[Intent, Reply]
    languages: tuple[str, ...] | None = None
    """The language packs this layer selects (most specific layer wins); None: as below."""
    builtin: bool = False
    """The built-in layer: its rules are those of the selected language packs."""
    wrong_number: bool | None = None
    """Whether wrong-number replies opt out (most specific layer wins); None: as below (on)."""
    default_country: str | None = None
    """Country of national subscriber numbers (top level and accounts only); None: as below."""


@dataclass(slots=True)
class RuleBook:
    """All layers from the rules file; :meth:`resolve` answers which rules apply to a message."""

    base: RuleSet
    base_layers: tuple[Layer, ...]
    accounts: dict[str, Layer] = field(default_factory=dict)
    subaccounts: dict[tuple[str, str], Layer] = field(default_factory=dict)
    senders: dict[tuple[str, str], Layer] = field(default_factory=dict)
    provider_accounts: Mapping[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    """(input format, provider account id or "*") -> (account, subaccount): the rules file's
    ``provider_accounts``, read by the provider decoders (:mod:`worker.events.providers`)."""
    countries: Countries = field(default_factory=Countries)
    """The default countries the layers set (top level and accounts): what a send service's
    :class:`~worker.sender.BlocklistView` needs to canonicalize addresses as the classifier does."""
    _overridden: frozenset[str] = frozenset()
    _cache: dict[tuple[str, str | None, str | None], RuleSet] = field(default_factory=dict)
    _chat_bitmaps: ChatBitmaps | None = None

    def __post_init__(self) -> None:
        self._overridden = frozenset(
            [*self.accounts, *(a for a, _ in self.subaccounts), *(a for a, _ in self.senders)]
        )

    @property
    def uniform(self) -> bool:
        """No account has rules of its own: every message gets :attr:`base` (the pipeline then
        skips :meth:`resolve` per message)."""
        return not self._overridden

    @property
    def overridden(self) -> frozenset[str]:
        """The accounts with rules of their own (every other account gets :attr:`base`)."""
        return self._overridden

    def chat_bitmaps(self) -> ChatBitmaps:
        """:attr:`base`'s bitmaps for the batch step's chat screen (:mod:`worker.classify.screen`),
        built on first use: a rules reload builds a new book, and tests build hundreds."""
        if self._chat_bitmaps is None:
            self._chat_bitmaps = build_chat_bitmaps(self.base)
        return self._chat_bitmaps

    def resolve(self, account_id: str, subaccount_id: str | None, sender: str | None) -> RuleSet:
        if account_id not in self._overridden:
            return self.base
        sub_key = (account_id, subaccount_id or "")
        snd_key = (account_id, sender or "")
        if sender is not None and ":" in sender and snd_key not in self.senders:
            # Sender overrides are keyed by the canonical sender: "whatsapp:+14155238886" is
            # "+14155238886". Only a prefixed sender pays for it: chat stays one membership test.
            snd_key = (account_id, canonical_sender(sender)[0])
        key = (
            account_id,
            subaccount_id if sub_key in self.subaccounts else None,
            snd_key[1] if snd_key in self.senders else None,
        )
        cached = self._cache.get(key)
        if cached is None:
            specific = (
                self.accounts.get(account_id),
                self.subaccounts.get(sub_key),
                self.senders.get(snd_key),
            )
            layers = [*self.base_layers, *(layer for layer in specific if layer is not None)]
            cached = self._cache[key] = compile_layers(layers)
        return cached


def compile_layers(layers: Iterable[Layer]) -> RuleSet:
    """Compile a layer stack, least specific first, into the :class:`RuleSet` the classifier uses."""
    layers = tuple(layers)
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    wrong_number = True
    builtin_kept = False
    country: str | None = None
    for layer in layers:
        if layer.languages is not None:
            languages = layer.languages
        if layer.default_country is not None:
            country = layer.default_country
        if layer.wrong_number is not None:
            wrong_number = layer.wrong_number
        if not layer.inherit:
            builtin_kept = False
        builtin_kept = builtin_kept or layer.builtin
    default = languages[0]
    entries: dict[str, Match] = {}
    patterns: list[tuple[Rule, str, Phrase]] = []
    literals: dict[str, Match] = {}
    replies: dict[Intent, dict[str, str | None]] = {}
    for layer in layers:
        if not layer.inherit:
            entries.clear()
            patterns.clear()
            literals.clear()
        if layer.builtin:
            rules = [
                rule
                for language in languages
                if language in PACK_RULES
                for rule in PACK_RULES[Language(language)]
                if wrong_number or rule.name != WRONG_NUMBER
            ]
        else:
            rules = list(layer.rules)
        layer_entries: dict[str, Match] = {}
        for rule in rules:
            language = rule.language or default
            patterns.extend((rule, language, phrase) for phrase in rule.patterns)
            for keyword in rule.keywords:
                key = normalize(keyword)
                match = Match(rule, keyword, MatchMode.EXACT, language)
                # Within the built-in layer the first pack listed wins a shared keyword ("STOP").
                layer_entries.setdefault(key, match)
                if rule.match is MatchMode.PHRASE:
                    literals[key] = match
        # Accent-less spellings ("arret") after every spelling the layer names itself.
        for key, match in list(layer_entries.items()):
            layer_entries.setdefault(strip_accents(key), match)
        entries.update(layer_entries)
        for intent, reply in layer.replies.items():
            texts = reply_texts(reply)
            if ANY_LANGUAGE in texts:
                replies[intent] = dict(texts)
            else:
                replies.setdefault(intent, {}).update(texts)
    packs = [PACKS[Language(language)] for language in languages if language in PACKS]
    first, longer = _leads(entries)
    phrases = _phrases(patterns, literals, packs)
    near = _fuzzy(tuple(languages), entries) if builtin_kept else {}
    # Mangled spellings that are no real word join the exact table: "stpo" costs the one lookup
    # "stop" costs, and ordinary chat pays nothing more.
    commands = frozenset(
        words[0]
        for key, m in entries.items()
        if m.rule.intent is Intent.OPT_OUT
        and m.rule.match is MatchMode.LEADING
        and m.rule.brands
        and len(words := tokens(key)) == 1
    )
    # The first part of a split keyword ("S top", "st op"); not a word of its own ("can", "i").
    words_of_packs = {w for pack in packs for w in (*pack.ordinary, *pack.conjunctions)}
    words_of_packs |= {w for language in languages for w in GUARDS.get(language, "").split()}
    prefixes = {
        key[:end].encode()
        for key, m in entries.items()
        if m.rule.match is not MatchMode.PHRASE and key.isalpha()
        for end in range(1, len(key))
        if key[:end] not in words_of_packs
    }
    courtesy = _encoded(word for pack in packs for word in pack.courtesy)
    gate = commands if phrases is None else commands | phrases.triggers
    return RuleSet(
        table=MappingProxyType(entries),
        replies=MappingProxyType({intent: MappingProxyType(texts) for intent, texts in replies.items()}),
        languages=languages,
        first=first,
        longer=longer,
        keyword_words=MappingProxyType(
            {
                words[0]: m.rule.intent
                for key, m in reversed(entries.items())
                if len(words := tokens(key)) == 1
            }
        ),
        courtesy=courtesy,
        ordinary=_encoded(word for pack in packs for word in pack.ordinary),
        conjunctions=_encoded(word for pack in packs for word in pack.conjunctions),
        phrases=phrases,
        openers=frozenset(first) | courtesy,
        commands=commands,
        command_forms=MappingProxyType({word: (word.decode(), word.decode().upper()) for word in commands}),
        gate=gate,
        gate_bits=word_bits(gate),
        fuzzy=near,
        fuzzy_chars=max(map(len, near), default=0),
        prefixes=frozenset(prefixes),
        default_country=country,
    )


def fuzzed_keywords(packs: Iterable[LanguagePack]) -> list[tuple[str, Intent]]:
    """The packs' keywords that are fuzzed, normalized (and without accents): single words of at
    least four letters that take a brand in leading mode (see :mod:`worker.classify.fuzzy`)."""
    out: dict[str, Intent] = {}
    for pack in packs:
        for group in pack.keywords:
            if group.mode is not MatchMode.LEADING:
                continue
            for keyword in group.keywords:
                key = normalize(keyword)
                for spelling in (key, strip_accents(key)):
                    least = fuzzy.MIN_LETTERS if group.brands else fuzzy.MIN_EVERYDAY_LETTERS
                    if spelling.isalpha() and len(spelling) >= least:
                        out.setdefault(spelling, group.intent)
    return list(out.items())


def _fuzzy(languages: tuple[str, ...], entries: Mapping[str, Match]) -> dict[str, tuple[fuzzy.Fuzzy, Match]]:
    table = _fuzzy_table(tuple(language for language in languages if language in PACKS))
    out: dict[str, tuple[fuzzy.Fuzzy, Match]] = {}
    for spelling, found in table.items():
        if spelling in entries:
            continue
        match = entries.get(found.keyword)
        if match is None or match.rule.match is not MatchMode.LEADING:
            continue
        out[spelling] = (
            found,
            Match(match.rule, match.keyword, MatchMode.EXACT, match.language, fuzzy=True),
        )
    return out


@functools.cache
def _fuzzy_table(languages: tuple[str, ...]) -> Mapping[str, fuzzy.Fuzzy]:
    """Mangled spellings per language selection, shared by every rule set with those languages."""
    packs = [PACKS[Language(language)] for language in languages]
    guards = {word for language in languages for word in GUARDS.get(language, "").split()}
    for pack in packs:
        guards.update(pack.ordinary, pack.courtesy, pack.conjunctions)
        guards.update(strip_accents(word) for word in (*pack.ordinary, *pack.courtesy))
    keys = {normalize(k) for p in packs for g in p.keywords for k in g.keywords}
    keys |= {strip_accents(k) for k in keys}
    return fuzzy.table(fuzzed_keywords(packs), dict.fromkeys(keys), frozenset(guards))


def _encoded(words: Iterable[str]) -> frozenset[bytes]:
    """Words as the classifier's tokens, each also without accents."""
    out: set[bytes] = set()
    for word in words:
        out.update(tokens(normalize(word)))
        out.update(tokens(strip_accents(normalize(word))))
    return frozenset(out)


def _leads(
    entries: Mapping[str, Match],
) -> tuple[Mapping[bytes, tuple[Lead, ...]], Mapping[bytes, Mapping[bytes, tuple[Lead, ...]]]]:
    """The leading keywords: one-word ones by their word, longer ones by their first two words."""
    single: dict[bytes, list[Lead]] = {}
    longer: dict[bytes, dict[bytes, list[Lead]]] = {}
    for key, match in entries.items():
        if match.rule.match is not MatchMode.LEADING:
            continue
        words = tuple(tokens(key))
        if words:
            lead = Lead(words, Match(match.rule, match.keyword, MatchMode.LEADING, match.language))
            single.setdefault(words[0], [])
            if len(words) == 1:
                single[words[0]].append(lead)
            else:
                longer.setdefault(words[0], {}).setdefault(words[1], []).append(lead)
    # Longest keyword first: "stop all please" is STOP ALL, not STOP.
    return (
        MappingProxyType({w: tuple(v) for w, v in single.items()}),
        MappingProxyType(
            {
                first: MappingProxyType(
                    {w: tuple(sorted(v, key=lambda lead: -len(lead.words))) for w, v in seconds.items()}
                )
                for first, seconds in longer.items()
            }
        ),
    )


def _phrases(
    patterns: list[tuple[Rule, str, Phrase]],
    literals: Mapping[str, Match],
    packs: list[LanguagePack],
) -> Phrases | None:
    if not patterns and not literals:
        return None
    negations = {pack.language.value: pack.negations for pack in packs}
    every = "|".join(negations.values()) or None
    items: list[PhraseRule] = []
    by_trigger: dict[bytes, list[int]] = {}
    # A rules-file phrase is triggered by its longest word (all of its words are in any match).
    sources: list[tuple[Rule, str, str, tuple[str, ...]]] = [
        (m.rule, m.language, _literal(key), (max(key.split(" "), key=len),)) for key, m in literals.items()
    ]
    sources += [(rule, language, phrase.pattern, phrase.triggers) for rule, language, phrase in patterns]
    for index, (rule, language, pattern, triggers) in enumerate(sources):
        cues = negations.get(language, every)
        items.append(
            PhraseRule(_compiled(pattern), rule, language, None if cues is None else _compiled(cues))
        )
        for word in _encoded(triggers):
            by_trigger.setdefault(word, []).append(index)
    return Phrases(
        MappingProxyType({word: tuple(indexes) for word, indexes in by_trigger.items()}),
        tuple(items),
        frozenset(by_trigger),
    )


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _literal(key: str) -> str:
    """A rules-file phrase as a regular expression: whole words, any accents optional."""
    parts = []
    for word in key.split(" "):
        chars = []
        for char in word:
            base = strip_accents(char)
            chars.append(re.escape(char) if base == char else f"[{re.escape(char)}{re.escape(base)}]")
        parts.append("".join(chars))
    return r"(?<!\w)" + r"\W+".join(parts) + r"(?!\w)"


BUILTIN_LAYER = Layer(True, (), _builtin_replies(), builtin=True)


def default_rulebook() -> RuleBook:
    return RuleBook(compile_layers([BUILTIN_LAYER]), (BUILTIN_LAYER,))
