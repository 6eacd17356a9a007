"""Marketing-only opt-outs and opt-ins: "STOP MARKETING" blocks marketing alone, "START PROMOS"
lifts marketing blocks alone, and every plain keyword still blocks (or lifts) everything."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from worker.classify.decide import classify, decide, decide_encoded
from worker.classify.rules import default_rulebook
from worker.classify.rulesfile import rulebook_from_document
from worker.classify.scope import block_key
from worker.errors import ConfigError
from worker.events.outgoing import encode_change
from worker.model import Action, Category, InboundMessage, Intent, Source

RULES = default_rulebook().base

MESSAGE = InboundMessage(
    message_id="m-1",
    channel="sms",
    sender="12345",
    address="+15550001111",
    account_id="acc",
    subaccount_id=None,
    text="STOP",
    received_at="2026-11-24T10:00:00.000000Z",
)
SOURCE = Source("mo.inbound", 0, 7, "m-1")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("STOP MARKETING", "en"),
        ("stop promo", "en"),
        ("Stop promotions please", "en"),
        ("STOP ADS", "en"),
        ("UNSUBSCRIBE MARKETING", "en"),
        ("unsub promos", "en"),
        ("STOP MARKETING ACME", "en"),  # a brand after the two-word keyword
        ("please stop marketing", "en"),
        ("STOP PUB", "fr"),
        ("arret pub", "fr"),
        ("STOP PUBLICITÉ", "fr"),
        ("BAJA PUBLICIDAD", "es"),
        ("baja promociones por favor", "es"),
        ("STOPP WERBUNG", "de"),
        ("stop werbung", "de"),
        ("STOP PUBBLICITÀ", "it"),
        ("STOP RECLAME", "nl"),
        ("PARAR PROMOÇÕES", "pt"),
        ("parar publicidade", "pt"),
    ],
)
def test_marketing_opt_outs(text: str, language: str) -> None:
    match = classify(text, RULES)
    assert match is not None, text
    assert match.rule.intent is Intent.OPT_OUT
    assert match.rule.category is Category.MARKETING
    assert match.rule.name == "stop_marketing"
    assert match.language == language


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "Stop.",
        "STOP ACME",
        "stop please",
        "STOPALL",
        "STOP ALL",
        "stop all marketing",  # STOP ALL wins: every channel, every message
        "UNSUBSCRIBE",
        "STOP TEXTS",
        "no more marketing",  # a phrased request stays a full block: a missed opt-out costs most
        "ARRET",
        "BAJA",
        "STOPP",
    ],
)
def test_plain_opt_outs_stay_full_blocks(text: str) -> None:
    match = classify(text, RULES)
    assert match is not None, text
    assert match.rule.intent is Intent.OPT_OUT
    assert match.rule.category is Category.ALL


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("START MARKETING", Category.MARKETING),
        ("resume promotions", Category.MARKETING),
        ("Start promos please", Category.MARKETING),
        ("START", Category.ALL),
        ("UNSTOP", Category.ALL),
        ("START MARKETING ACME", Category.MARKETING),  # a brand, as after START
    ],
)
def test_opt_ins(text: str, category: Category) -> None:
    match = classify(text, RULES)
    assert match is not None, text
    assert match.rule.intent is Intent.OPT_IN
    assert match.rule.category is category


@pytest.mark.parametrize(
    "text",
    ["resume marketing plan", "RESUME MARKETING Acme", "when does the promo start?", "stop by the promo"],
)
def test_chat_about_promotions_is_no_keyword_and_resume_takes_no_brand(text: str) -> None:
    assert classify(text, RULES) is None


def _decide(text: str) -> list[tuple[bytes, Any]]:
    match = classify(text, RULES)
    assert match is not None
    return list(decide(dataclasses.replace(MESSAGE, text=text), match, RULES, SOURCE).changes)


def test_a_marketing_opt_out_is_one_marketing_block() -> None:
    ((key, event),) = _decide("STOP MARKETING")
    assert event.action is Action.BLOCK
    assert event.category is Category.MARKETING
    assert key == block_key(event.scope, MESSAGE.address, Category.MARKETING)
    assert orjson.loads(key)[-1] == "marketing"


def test_a_marketing_opt_in_lifts_marketing_blocks_only_and_start_lifts_both() -> None:
    marketing = _decide("START MARKETING")
    assert marketing
    assert {event.category for _, event in marketing} == {Category.MARKETING}
    assert all(event.action is Action.UNBLOCK for _, event in marketing)
    full = _decide("START")
    assert {event.category for _, event in full} == {Category.ALL, Category.MARKETING}
    # START lifts the very block STOP MARKETING made
    ((stop_key, _),) = _decide("STOP MARKETING")
    assert stop_key in {key for key, _ in full}
    assert stop_key in {key for key, _ in marketing}


@pytest.mark.parametrize("text", ["STOP MARKETING", "START MARKETING", "resume promos", "STOP PUB"])
def test_the_fused_encoder_carries_the_category(text: str) -> None:
    doc = {
        "message_id": "m-1",
        "channel": "sms",
        "from": MESSAGE.address,
        "to": MESSAGE.sender,
        "account_id": "acc",
        "text": text,
        "received_at": MESSAGE.received_at,
    }
    match = classify(text, RULES)
    assert match is not None
    changes: list[tuple[bytes, bytes]] = []
    emitted = orjson.dumps("2026-11-24T10:00:01.000000Z")
    decide_encoded(doc, MESSAGE.received_at, match, RULES, ("mo.inbound", 0, 7), emitted, changes, [])
    expected = [(key, encode_change(event, "2026-11-24T10:00:01.000000Z")) for key, event in _decide(text)]
    assert changes == expected
    assert {orjson.loads(value)["category"] for _, value in changes} == {"marketing"}


# --- rules file -------------------------------------------------------------------------------------


def test_a_rules_file_rule_may_name_its_category() -> None:
    book = rulebook_from_document(
        {
            "version": 1,
            "rules": [
                {"name": "no_deals", "intent": "opt_out", "keywords": ["NO DEALS"], "category": "marketing"},
                {"name": "deals", "intent": "opt_in", "keywords": ["DEALS"], "category": "marketing"},
                {"name": "halt", "intent": "opt_out", "keywords": ["HALT"]},
            ],
        }
    )
    rules = book.base
    for text, intent, category in (
        ("no deals", Intent.OPT_OUT, Category.MARKETING),
        ("DEALS", Intent.OPT_IN, Category.MARKETING),
        ("halt", Intent.OPT_OUT, Category.ALL),  # absent: all
    ):
        match = classify(text, rules)
        assert match is not None
        assert (match.rule.intent, match.rule.category) == (intent, category)


def test_a_rules_file_can_turn_a_marketing_keyword_into_a_full_block() -> None:
    """A program whose every message is marketing can read "STOP PROMO" as a plain STOP."""
    book = rulebook_from_document(
        {"version": 1, "rules": [{"name": "stop", "intent": "opt_out", "keywords": ["STOP PROMO"]}]}
    )
    match = classify("STOP PROMO", book.base)
    assert match is not None
    assert match.rule.category is Category.ALL


def test_an_unknown_category_is_one_line_naming_where() -> None:
    doc = {
        "version": 1,
        "rules": [{"name": "x", "intent": "opt_out", "keywords": ["X"], "category": "promos"}],
    }
    with pytest.raises(ConfigError) as caught:
        rulebook_from_document(doc, origin="r.json")
    message = str(caught.value)
    assert message.startswith("rules file r.json: at rules/0/category: ")
    assert "\n" not in message
