"""Issue 15: mangled keywords and their guards, keyword + complaint, wrong numbers, the review queue."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.factories import FakeRecord, inbound_doc, where
from worker.classify.decide import _FUZZY_MAX_CHARS, Doubt, classify, reason
from worker.classify.evaluation import evaluate, load_corpus
from worker.classify.fuzzy import MIN_LETTERS, variants
from worker.classify.packs import PACKS
from worker.classify.packs.guards import GUARDS
from worker.classify.rules import default_rulebook, fuzzed_keywords
from worker.classify.rulesfile import rulebook_from_document
from worker.events import schemas
from worker.model import Intent
from worker.stream.batch import BatchOutput, classify_records

BASE = default_rulebook().base
FUZZED = fuzzed_keywords(list(PACKS.values()))
GUARDED = sorted({word for text in GUARDS.values() for word in text.split()})


def _intent(text: str) -> Intent:
    match = classify(text, BASE)
    return Intent.NONE if match is None else match.rule.intent


def test_fuzzed_keywords_are_single_words_of_four_letters_or_more() -> None:
    assert ("stop", Intent.OPT_OUT) in FUZZED
    assert ("unsubscribe", Intent.OPT_OUT) in FUZZED
    assert all(len(k) >= MIN_LETTERS and k.isalpha() for k, _ in FUZZED)
    assert "end" not in dict(FUZZED)
    assert "fin" not in dict(FUZZED)
    assert "basta" not in dict(FUZZED)  # an everyday word under six letters


def test_variants_hold_the_four_edits_and_doublings() -> None:
    found = set(variants("stop"))
    assert {"sto", "stpo", "stoo", "stopo", "sstop", "sstopp", "atop"} <= found
    assert "spot" not in found  # two edits


@st.composite
def _variant(draw: st.DrawFn) -> tuple[str, str, Intent]:
    keyword, intent = draw(st.sampled_from(FUZZED))
    return draw(st.sampled_from(sorted(set(variants(keyword))))), keyword, intent


@settings(max_examples=400, deadline=None)
@given(_variant())
def test_every_one_edit_variant_is_caught_in_exact_position_unless_guarded(
    case: tuple[str, str, Intent],
) -> None:
    text, _keyword, intent = case
    exact = BASE.table.get(text)
    if exact is not None:  # itself a keyword ("stopp", "start")
        assert classify(text, BASE) == exact
        return
    entry = BASE.fuzzy.get(text)
    assert entry is not None, text
    match = classify(text, BASE)
    if entry[0].guarded:
        assert match is None or not match.fuzzy, text
    else:
        assert match is not None, text
        assert match.fuzzy, text
        assert match.rule.intent is intent, text


@settings(max_examples=200, deadline=None)
@given(_variant(), st.sampled_from(["please", "pls", "thanks", "svp", "bitte", "por favor", "2", "!!"]))
def test_a_variant_then_courtesy_is_caught_in_leading_position(
    case: tuple[str, str, Intent], tail: str
) -> None:
    text, _, _ = case
    entry = BASE.fuzzy.get(text)
    if entry is None or entry[0].guarded or BASE.table.get(text) is not None:
        return
    if len(f"{text} {tail}") > _FUZZY_MAX_CHARS:
        return  # only short messages are read for mangled keywords
    match = classify(f"{text} {tail}", BASE)
    assert match is not None, text
    assert match.rule.intent is entry[1].rule.intent, text


@pytest.mark.parametrize("word", GUARDED)
def test_no_guarded_word_ever_matches_as_a_mangled_keyword(word: str) -> None:
    for text in (word, f"{word} please", word.upper()):
        match = classify(text, BASE)
        assert match is None or not match.fuzzy, text


@pytest.mark.parametrize(
    "word",
    ["stoop", "step", "shop", "top", "stops", "quite", "quiet", "stare", "star", "stap", "stoep", "hell"],
)
def test_real_words_near_keywords_are_guarded(word: str) -> None:
    assert _intent(word) is Intent.NONE
    doubts: list[Doubt] = []
    classify(word, BASE, doubts)
    assert doubts
    assert doubts[0].reason == "fuzzy_guarded"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("stpo", Intent.OPT_OUT),
        ("sotp", Intent.OPT_OUT),
        ("sstopp", Intent.OPT_OUT),
        ("S top", Intent.OPT_OUT),
        ("st op", Intent.OPT_OUT),
        ("unsubscibe", Intent.OPT_OUT),
        ("unsusbcribe", Intent.OPT_OUT),
        ("cancle", Intent.OPT_OUT),
        ("opt uot", Intent.OPT_OUT),
        ("sotp svp", Intent.OPT_OUT),
        ("abmeldne", Intent.OPT_OUT),
        ("hlep", Intent.HELP),
        ("srart", Intent.OPT_IN),
        ("so top", Intent.NONE),
        ("stove", Intent.NONE),
        ("spot", Intent.NONE),
        ("ends", Intent.NONE),
        ("send", Intent.NONE),
        ("stpo motion film tonight with the kids", Intent.NONE),  # long: never fuzzed
    ],
)
def test_mangled_keywords(text: str, intent: Intent) -> None:
    assert _intent(text) is intent


def test_a_mangled_keyword_says_so() -> None:
    match = classify("stpo", BASE)
    assert match is not None
    assert match.fuzzy
    assert reason(match) == "opt_out_typo"
    plain = classify("stop", BASE)
    assert plain is not None
    assert reason(plain) == "opt_out_keyword"


@pytest.mark.parametrize(
    "text",
    [
        "STOP, who gave you my number",
        "stop it now",
        "Stop that",
        "Enough already, stop",
        "this is harassment. stop",
        "STOP. I never signed up for this",
        "STOP you people are relentless",
        "STOP or I'm calling my lawyer",
        "I've told you 3 times STOP",
        "please just stop, I'm begging you",
        "BAJA. quien les dio mi numero??",
        "STOPP! Woher haben Sie meine Nummer?",
    ],
)
def test_a_keyword_with_a_complaint_opts_out(text: str) -> None:
    assert _intent(text) is Intent.OPT_OUT, text


@pytest.mark.parametrize(
    "text",
    [
        "STOP by later?",
        "stop by later?",
        "Stop by later",
        "STOP by the store",
        "can you stop it?",
        "I can't stop it",
        "the bus STOP",
        "cancel my order",
        "Stop & Shop has it cheaper btw",
        "don't stop, I love these",
        "Don't STOP",
        "please don't STOP sending the coupons",
        "ne STOP pas",
    ],
)
def test_chat_around_a_keyword_stays_chat(text: str) -> None:
    assert _intent(text) is Intent.NONE, text


WRONG_NUMBERS = [
    ("wrong number!!", "en"),
    ("you've got the wrong person", "en"),
    ("número equivocado", "es"),
    ("mauvais numéro", "fr"),
    ("falsche Nummer", "de"),
    ("número errado", "pt"),
    ("numero sbagliato", "it"),
    ("verkeerd nummer", "nl"),
]


@pytest.mark.parametrize(("text", "language"), WRONG_NUMBERS)
def test_every_pack_has_wrong_number_phrases_with_their_own_reason(text: str, language: str) -> None:
    match = classify(text, BASE)
    assert match is not None
    assert match.rule.name == "wrong_number"
    assert match.language == language
    assert reason(match) == "opt_out_wrong_number"


def test_wrong_numbers_can_be_switched_off_per_scope() -> None:
    book = rulebook_from_document(
        {"version": 1, "overrides": [{"account": "routed", "wrong_number": False}]}, "test"
    )
    routed = book.resolve("routed", None, None)
    for text, _ in WRONG_NUMBERS:
        assert classify(text, book.base) is not None
        assert classify(text, routed) is None
    assert classify("STOP", routed) is not None  # everything else stays
    back_on = rulebook_from_document(
        {"version": 1, "wrong_number": False, "overrides": [{"account": "a", "wrong_number": True}]}, "test"
    )
    assert classify("wrong number", back_on.base) is None
    assert classify("wrong number", back_on.resolve("a", None, None)) is not None


def test_the_review_doubts_come_from_the_same_pass() -> None:
    doubts: list[Doubt] = []
    assert classify("I don't want to opt out", BASE, doubts) is None
    assert [d.reason for d in doubts] == ["negated_phrase"]
    doubts.clear()
    assert classify("is STOP free to send?", BASE, doubts) is None
    assert [d.reason for d in doubts] == ["keyword_in_text"]
    doubts.clear()
    assert classify("the bus stop is closed", BASE, doubts) is None
    assert doubts == []
    assert classify("thanks, see you tomorrow", BASE, doubts) is None
    assert doubts == []
    assert classify("STOP", BASE, doubts) is not None
    assert doubts == []


def _records(texts: list[str]) -> list[FakeRecord]:
    return [
        FakeRecord(
            "mo.inbound",
            0,
            i,
            1764000000000,
            b"k",
            orjson.dumps(inbound_doc(t, message_id=f"m{i}", address=f"+1555{i:07d}", account="acc")),
        )
        for i, t in enumerate(texts)
    ]


def test_the_batch_sends_uncertain_messages_to_review_besides_classifying_them() -> None:
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="9")
    records = _records(["stoop", "STOP", "I don't want to opt out", "hello", "STOP by later?"])
    classify_records(
        where(records),
        records,
        default_rulebook(),
        out,
    )
    assert len(out.changes) == 1
    assert len(out.reviews) == 3
    assert out.reviews_by_reason == {"fuzzy_guarded": 1, "negated_phrase": 1, "keyword_in_text": 1}
    validator = schemas.validator(schemas.REVIEW)
    for key, value in out.reviews:
        doc = orjson.loads(value)
        assert list(validator.iter_errors(doc)) == []
        assert key == b"acc"
        assert doc["predicted"] == "none"
    first = orjson.loads(out.reviews[0][1])
    assert first["text"] == "stoop"
    assert first["candidates"][0]["keyword"] == "STOP"


def test_labeled_review_records_are_an_eval_corpus() -> None:
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="9")
    records = _records(["stoop", "stops"])
    classify_records(where(records), records, default_rulebook(), out)
    lines = []
    for (_, value), label in zip(out.reviews, ("none", "opt_out"), strict=True):
        doc = orjson.loads(value)
        doc["label"] = label
        assert list(schemas.validator(schemas.REVIEW).iter_errors(doc)) == []
        lines.append(orjson.dumps(doc))
    samples = load_corpus(lines, "reviews")
    assert [(s.text, s.intent, s.category, s.language) for s in samples] == [
        ("stoop", Intent.NONE, "review", "en"),
        ("stops", Intent.OPT_OUT, "review", "en"),
    ]
    report = evaluate(samples, BASE)
    assert report.by_category["review"] == (1, 2)


def test_reviews_are_counted_per_reason_from_the_first_scrape() -> None:
    from prometheus_client import CollectorRegistry

    from worker.constants import REVIEW_REASONS
    from worker.ops.metrics import ClassifierMetrics

    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    for reason_ in REVIEW_REASONS:
        assert registry.get_sample_value("optout_reviews_produced_total", {"reason": reason_}) == 0
    metrics.reviews.labels("fuzzy_guarded").inc(2)
    assert registry.get_sample_value("optout_reviews_produced_total", {"reason": "fuzzy_guarded"}) == 2


def test_the_review_reasons_are_the_schema_enum() -> None:
    from worker.constants import REVIEW_REASONS

    schema = schemas.load(schemas.REVIEW)
    assert tuple(schema["properties"]["reasons"]["items"]["enum"]) == REVIEW_REASONS


def test_the_guard_lists_are_what_the_generator_makes() -> None:
    """worker/classify/packs/guards.py is generated by tools/make_guards.py from pyspellchecker's
    word lists (a dev dependency): a keyword or pack change that needs new guards fails here until
    the file is regenerated and reviewed."""
    import runpy
    from pathlib import Path

    pytest.importorskip("spellchecker")
    root = Path(__file__).resolve().parents[3]
    render = runpy.run_path(str(root / "tools" / "make_guards.py"), run_name="make_guards")["render"]
    assert render() == (root / "worker" / "classify" / "packs" / "guards.py").read_text()
