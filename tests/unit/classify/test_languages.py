"""worker.languages and the match modes: every pack's keywords, phrases, negations and replies.

The sentences here are our own, written apart from tests/corpus (which the evaluation test uses),
so the packs are checked on text they were not tuned on.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.classify.decide import classify
from worker.classify.normalize import normalize
from worker.classify.packs import DEFAULT_LANGUAGES, PACKS
from worker.classify.rules import PACK_RULES, RuleSet, default_rulebook
from worker.classify.rulesfile import rulebook_from_document
from worker.model import Intent, Language, MatchMode

BASE = default_rulebook().base
PACK_KEYWORDS = [
    (language, keyword, rule.intent, rule.match, rule.brands)
    for language, rules in PACK_RULES.items()
    for rule in rules
    for keyword in rule.keywords
]


def _intent(text: str, rules: RuleSet = BASE) -> Intent:
    match = classify(text, rules)
    return Intent.NONE if match is None else match.rule.intent


def _first_language(keyword: str) -> Language:
    """The pack that owns a shared keyword: the first of DEFAULT_LANGUAGES that lists it."""
    key = normalize(keyword)
    return next(
        language
        for language in DEFAULT_LANGUAGES
        for rule in PACK_RULES[language]
        if key in {normalize(k) for k in rule.keywords}
    )


# --- keywords -------------------------------------------------------------------------------------


def test_every_required_language_has_a_pack_with_all_three_intents() -> None:
    assert set(PACKS) == {"en", "es", "fr", "de", "pt", "it", "nl"}
    for language, rules in PACK_RULES.items():
        intents = {rule.intent for rule in rules if rule.keywords}
        assert intents == {Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP}, language


@pytest.mark.parametrize(("language", "keyword", "intent", "mode", "brands"), PACK_KEYWORDS)
def test_every_pack_keyword_classifies_to_its_intent_and_owner_language(
    language: Language, keyword: str, intent: Intent, mode: MatchMode, brands: bool
) -> None:
    match = classify(keyword, BASE)
    assert match is not None, keyword
    assert match.rule.intent is intent
    assert match.mode is MatchMode.EXACT
    assert match.language == _first_language(keyword)


def test_canadian_keywords() -> None:
    for text, intent, language in [
        ("STOP", Intent.OPT_OUT, "en"),
        ("ARRET", Intent.OPT_OUT, "fr"),
        ("Arrêt", Intent.OPT_OUT, "fr"),
        ("HELP", Intent.HELP, "en"),
        ("AIDE", Intent.HELP, "fr"),
        ("INFO", Intent.HELP, "en"),
    ]:
        match = classify(text, BASE)
        assert match is not None
        assert (match.rule.intent, match.language) == (intent, language)


_PADDING = st.text(alphabet=" \t\n\u00a0\u3000.!?,;:'\"“”‘’«»„()*~😡🛑✋🏽👍🙏❤️\u200b", max_size=5)
_INVISIBLE = st.sampled_from(["", "", "", "\u200b", "\u200d", "\ufeff", "\u00ad"])


@st.composite
def _surface_forms(draw: st.DrawFn) -> tuple[str, Intent]:
    """A pack keyword in a surface form a subscriber might type: case, width, spacing, accents."""
    _, keyword, intent, _, _ = draw(st.sampled_from(PACK_KEYWORDS))
    if draw(st.booleans()):  # subscribers often drop accents
        keyword = "".join(c for c in unicodedata.normalize("NFD", keyword) if not unicodedata.combining(c))
    full_width = draw(st.booleans())
    out = []
    for char in keyword:
        if char == " ":
            out.append(draw(st.text(alphabet=" \t\u00a0", min_size=1, max_size=3)))
            continue
        char = char.upper() if draw(st.booleans()) else char.lower()
        if full_width and "!" <= char <= "~":
            char = chr(ord(char) + 0xFEE0)
        out.append(char + draw(_INVISIBLE))
    return draw(_PADDING) + "".join(out) + draw(_PADDING), intent


@given(_surface_forms())
def test_every_surface_form_of_every_pack_keyword_classifies_to_its_intent(form: tuple[str, Intent]) -> None:
    text, intent = form
    assert _intent(text) is intent, repr(text)


# --- leading mode ---------------------------------------------------------------------------------

_LEADING = [k for k in PACK_KEYWORDS if k[3] is MatchMode.LEADING]


@given(
    keyword=st.sampled_from(_LEADING),
    tail=st.sampled_from(
        ["please", "thanks", "por favor", "merci", "bitte", "obrigado", "grazie", "aub", "2", "🙏"]
    ),
)
def test_leading_keywords_with_a_courtesy_or_number(keyword: tuple[Any, ...], tail: str) -> None:
    _, word, intent, _, _ = keyword
    match = classify(f"{word} {tail}", BASE)
    assert match is not None
    assert match.rule.intent is intent
    assert match.mode is (MatchMode.EXACT if tail == "🙏" else MatchMode.LEADING)  # emoji are trimmed


@pytest.mark.parametrize(("language", "keyword", "intent", "mode", "brands"), _LEADING)
def test_a_brand_follows_only_unambiguous_keywords(
    language: Language, keyword: str, intent: Intent, mode: MatchMode, brands: bool
) -> None:
    expected = intent if brands else Intent.NONE
    assert _intent(f"{keyword} Initech") is expected
    assert _intent(f"{keyword} initech") is expected


def test_exact_mode_keywords_do_not_lead() -> None:
    assert _intent("para") is Intent.OPT_OUT
    assert _intent("para por favor") is Intent.NONE
    assert _intent("para todos") is Intent.NONE


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Baja gracias", Intent.OPT_OUT),
        ("ARRET SVP", Intent.OPT_OUT),
        ("Stopp, danke!", Intent.OPT_OUT),
        ("sair por favor", Intent.OPT_OUT),
        ("disiscrivimi grazie", Intent.OPT_OUT),
        ("afmelden graag", Intent.OPT_OUT),
        ("Basta ya", Intent.OPT_OUT),
        ("START again please", Intent.OPT_IN),
        ("alta gracias", Intent.OPT_IN),
        ("ANMELDEN bitte", Intent.OPT_IN),
        ("AYUDA por favor", Intent.HELP),
        ("hilfe bitte", Intent.HELP),
        ("help?", Intent.HELP),
        ("stop start", Intent.NONE),
        ("baja el volumen", Intent.NONE),
        ("fin de semana", Intent.NONE),
        ("arrêt de bus", Intent.NONE),
        ("ende gut alles gut", Intent.NONE),
        ("start tomorrow?", Intent.NONE),
        ("aide moi à choisir une taille", Intent.NONE),
        ("cancel order 5512", Intent.NONE),
    ],
)
def test_leading_examples(text: str, intent: Intent) -> None:
    assert _intent(text) is intent


# --- phrases and negations --------------------------------------------------------------------------

_PHRASES: list[tuple[str, Intent, str]] = [
    ("Can you please delete my number?", Intent.OPT_OUT, "en"),
    ("pls get me off ur list", Intent.OPT_OUT, "en"),
    ("I am opting out", Intent.OPT_OUT, "en"),
    ("no more promos pls", Intent.OPT_OUT, "en"),
    ("Quit sending me these", Intent.OPT_OUT, "en"),
    ("do not contact me again", Intent.OPT_OUT, "en"),
    ("I no longer want these", Intent.OPT_OUT, "en"),
    ("hey, I withdraw my consent", Intent.OPT_OUT, "en"),
    ("please sign me back up", Intent.OPT_IN, "en"),
    ("I would love to resubscribe", Intent.OPT_IN, "en"),
    ("need help with my subscription", Intent.HELP, "en"),
    ("por favor denme de baja", Intent.OPT_OUT, "es"),
    ("ya no quiero recibir nada de ustedes", Intent.OPT_OUT, "es"),
    ("dejen de escribirme", Intent.OPT_OUT, "es"),
    ("elimínenme de la base de datos", Intent.OPT_OUT, "es"),
    ("quiero darme de alta otra vez", Intent.OPT_IN, "es"),
    ("désinscrivez-moi svp", Intent.OPT_OUT, "fr"),
    ("ne m'écrivez plus jamais", Intent.OPT_OUT, "fr"),
    ("arrêtez de me spammer", Intent.OPT_OUT, "fr"),
    ("je veux me réabonner", Intent.OPT_IN, "fr"),
    ("Tragen Sie mich bitte aus", Intent.OPT_OUT, "de"),
    ("ich will keine Werbung", Intent.OPT_OUT, "de"),
    ("wie kann ich mich abmelden", Intent.OPT_OUT, "de"),
    ("bitte wieder anmelden", Intent.OPT_IN, "de"),
    ("parem de me mandar isso", Intent.OPT_OUT, "pt"),
    ("não me enviem mais nada", Intent.OPT_OUT, "pt"),
    ("quero sair da lista", Intent.OPT_OUT, "pt"),
    ("smettetela di scrivermi", Intent.OPT_OUT, "it"),
    ("toglimi dalla lista", Intent.OPT_OUT, "it"),
    ("vorrei iscrivermi di nuovo", Intent.OPT_IN, "it"),
    ("schrijf me maar uit", Intent.OPT_OUT, "nl"),
    ("hou op met sms'en", Intent.OPT_OUT, "nl"),
    ("verwijder mijn gegevens", Intent.OPT_OUT, "nl"),
    ("graag weer aanmelden", Intent.OPT_IN, "nl"),
]


@pytest.mark.parametrize(("text", "intent", "language"), _PHRASES)
def test_phrased_requests(text: str, intent: Intent, language: str) -> None:
    match = classify(text, BASE)
    assert match is not None, text
    assert match.rule.intent is intent
    assert match.language == language


@pytest.mark.parametrize(
    "text",
    [
        "I really don't want to opt out",
        "please do not unsubscribe me",
        "I never asked to be removed",
        "don't stop sending the coupons",
        "no quiero que me den de baja",
        "je ne veux pas me désabonner",
        "bitte nicht abmelden",
        "não quero me descadastrar",
        "non voglio disiscrivermi",
        "ik wil me niet afmelden",
    ],
)
def test_negated_phrases_are_ordinary(text: str) -> None:
    assert _intent(text) is Intent.NONE


def test_a_no_that_answers_is_not_a_negation() -> None:
    assert _intent("No, just take me off the list") is Intent.OPT_OUT


def test_opt_out_wins_over_another_intent_in_one_message() -> None:
    assert _intent("help, stop texting me") is Intent.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "can you send me more info on the texts you mentioned?",
        "I want to cancel my reservation",
        "we stopped by the store",
        "the bus stop is closed",
        "Voy a dar de baja mi tarjeta vieja",
        "plus de détails svp",
        "ich habe keine Nachrichten bekommen",
        "não recebi as mensagens",
        "ho cancellato l'ordine",
        "geen probleem, tot morgen",
    ],
)
def test_ordinary_replies_with_keyword_like_words(text: str) -> None:
    assert _intent(text) is Intent.NONE


# --- pack data ------------------------------------------------------------------------------------


def test_phrase_patterns_compile_and_have_no_capturing_groups() -> None:
    for pack in PACKS.values():
        for phrase in pack.phrases:
            assert re.compile(phrase.pattern).groups == 0, phrase.pattern
            assert phrase.triggers, phrase.pattern


def test_courtesy_and_ordinary_words_do_not_overlap_across_packs() -> None:
    courtesy = {w for pack in PACKS.values() for w in pack.courtesy}
    ordinary = {w for pack in PACKS.values() for w in pack.ordinary}
    assert not courtesy & ordinary


# --- replies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", list(PACKS))
def test_replies_fit_one_sms_and_name_keywords_of_their_pack(language: Language) -> None:
    pack = PACKS[language]
    only = rulebook_from_document({"version": 1, "languages": [language]}).base
    for intent, text in pack.replies.items():
        filled = text.replace("{sender}", "+1415555019")  # 11 characters, a long number
        assert len(filled) <= 160, (language, intent, len(filled))
        for word in re.findall(r"\b[A-ZÀ-Ý]{4,}\b", text):
            match = classify(word, only)
            assert match is not None, (language, word)
            assert match.rule.intent is not Intent.NONE


def _reply(book_doc: dict[str, Any], text: str, account: str = "acc") -> str | None:
    rules = rulebook_from_document(book_doc).resolve(account, None, "S")
    match = classify(text, rules)
    assert match is not None
    return rules.reply_text(match)


def test_reply_language_is_the_keyword_language() -> None:
    doc = {"version": 1, "languages": ["en", "fr"]}
    assert _reply(doc, "STOP") == PACKS[Language.EN].replies[Intent.OPT_OUT]
    assert _reply(doc, "ARRET") == PACKS[Language.FR].replies[Intent.OPT_OUT]
    assert _reply(doc, "AIDE") == PACKS[Language.FR].replies[Intent.HELP]
    assert _reply({"version": 1}, "baja") == PACKS[Language.ES].replies[Intent.OPT_OUT]


def test_languages_per_override_select_packs_and_their_order() -> None:
    doc = {
        "version": 1,
        "overrides": [
            {"account": "quebec", "languages": ["fr", "en"]},
            {"account": "berlin", "languages": ["de"]},
        ],
    }
    book = rulebook_from_document(doc)
    stop = classify("STOP", book.resolve("quebec", None, "S"))
    assert stop is not None
    assert stop.language == "fr"  # French first: STOP is French there, and so is its reply
    assert classify("baja", book.resolve("quebec", None, "S")) is None
    assert classify("baja", book.resolve("elsewhere", None, "S")) is not None
    berlin = book.resolve("berlin", None, "S")
    assert classify("stopp bitte", berlin) is not None
    assert classify("arret", berlin) is None
    assert classify("ne m'envoyez plus de sms", berlin) is None


def test_per_language_replies_per_scope() -> None:
    doc = {
        "version": 1,
        "replies": {"opt_out": {"en": "Bye from Acme.", "fr": "Au revoir de la part d'Acme."}},
        "overrides": [
            {"account": "acc", "replies": {"opt_out": {"fr": "Adieu."}}},
            {"account": "plain", "replies": {"opt_out": "One text for all."}},
            {"account": "mute", "replies": {"opt_out": {"es": None}}},
        ],
    }
    assert _reply(doc, "stop", account="x") == "Bye from Acme."
    assert _reply(doc, "arret", account="x") == "Au revoir de la part d'Acme."
    assert _reply(doc, "baja", account="x") == PACKS[Language.ES].replies[Intent.OPT_OUT]
    assert _reply(doc, "arret", account="acc") == "Adieu."
    assert _reply(doc, "stop", account="acc") == "Bye from Acme."
    assert _reply(doc, "arret", account="plain") == "One text for all."
    assert _reply(doc, "baja", account="mute") is None
    assert _reply(doc, "stop", account="mute") == "Bye from Acme."


def test_custom_rule_language_defaults_to_the_first_language_and_picks_the_reply() -> None:
    doc = {
        "version": 1,
        "languages": ["fr", "en"],
        "rules": [
            {"name": "halte", "intent": "opt_out", "keywords": ["HALTE"]},
            {"name": "koniec", "intent": "opt_out", "keywords": ["KONIEC"], "language": "pl"},
        ],
    }
    rules = rulebook_from_document(doc).base
    halte, koniec = classify("halte", rules), classify("koniec", rules)
    assert halte is not None
    assert koniec is not None
    assert halte.language == "fr"
    assert koniec.language == "pl"
    # No Polish text: the set's first language.
    assert rules.reply_text(koniec) == PACKS[Language.FR].replies[Intent.OPT_OUT]


# --- custom rules: modes and numbers --------------------------------------------------------------


def test_custom_rule_modes() -> None:
    doc = {
        "version": 1,
        "rules": [
            {"name": "x", "intent": "opt_out", "keywords": ["PROMO OFF"], "match": "exact"},
            {"name": "y", "intent": "opt_out", "keywords": ["HALT"]},
            {
                "name": "z",
                "intent": "opt_out",
                "keywords": ["no más ofertas"],
                "match": "phrase",
                "language": "es",
            },
        ],
    }
    rules = rulebook_from_document(doc).base
    assert _intent("promo off", rules) is Intent.OPT_OUT
    assert _intent("promo off please", rules) is Intent.NONE
    assert _intent("HALT acme", rules) is Intent.OPT_OUT
    assert _intent("halt by the door", rules) is Intent.NONE
    found = classify("hola, no mas ofertas gracias", rules)
    assert found is not None
    assert (found.rule.name, found.mode, found.language) == ("z", MatchMode.PHRASE, "es")
    assert _intent("nunca no más ofertas", rules) is Intent.NONE


def test_custom_keywords_have_no_limit() -> None:
    rules = [
        {"name": f"r{i}", "intent": "opt_out", "keywords": [f"QUIT{i:04d}", f"END{i:04d}"]}
        for i in range(1000)
    ]
    book = rulebook_from_document({"version": 1, "overrides": [{"account": "big", "rules": rules}]})
    big = book.resolve("big", None, "S")
    assert len([k for k in big.table if k.startswith(("quit0", "end0"))]) == 2000
    match = classify("end0999 please", big)
    assert match is not None
    assert match.rule.name == "r999"
    assert classify("end0999", book.base) is None


_A = {"name": "a", "intent": "opt_out", "keywords": ["A"]}


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"version": 1, "languages": ["xx"]}, "languages/0"),
        ({"version": 1, "languages": []}, "languages"),
        ({"version": 1, "rules": [{**_A, "match": "fuzzy"}]}, "rules/0/match"),
        ({"version": 1, "rules": [{**_A, "language": "French"}]}, "rules/0/language"),
        ({"version": 1, "replies": {"help": {"english": "x"}}}, "replies/help"),
        ({"version": 1, "overrides": [{"account": "a", "languages": "fr"}]}, "overrides/0/languages"),
    ],
)  # fmt: skip
def test_new_rules_file_fields_are_validated(doc: dict[str, Any], where: str) -> None:
    from worker.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        rulebook_from_document(doc)
    assert f"at {where}: " in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["no más correos", "basta de correos", "No mas correos, gracias"])
def test_every_message_word_of_a_phrase_also_triggers_it(text: str) -> None:
    """Regression: "correos" was in the Spanish phrases' alternatives but not in their triggers,
    so these were never tried. One word tuple now feeds both."""
    match = classify(text, BASE)
    assert match is not None, text
    assert (match.rule.intent, match.mode, match.language) == (Intent.OPT_OUT, MatchMode.PHRASE, "es")
