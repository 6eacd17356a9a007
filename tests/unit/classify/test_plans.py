"""worker.classify.decide: a keyword MO's plan (what its records take from its match and context) is
made once per rule set, match and context, and the records joined from it are the objects path's."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import orjson
import pytest

from worker.classify.decide import classify, decide, decide_encoded
from worker.classify.rules import PHRASE_TEXTS_MAX, Match, default_rulebook
from worker.events.inbound import decode, to_message
from worker.events.joined import python_join
from worker.events.outgoing import CHANGE_HEAD, encode_change, encode_reply
from worker.model import Intent, Source

decide_module = sys.modules["worker.classify.decide"]
EMITTED = "2026-11-24T10:00:01.000000Z"


def _doc(text: str, message_id: str, sender: str = "12345", account: str = "acc") -> dict[str, Any]:
    return {
        "message_id": message_id,
        "channel": "sms",
        "from": "+15550001111",
        "to": sender,
        "account_id": account,
        "text": text,
        "received_at": "2026-11-24T10:00:00.000000Z",
    }


Records = list[tuple[bytes, bytes]]


def _expected(doc: dict[str, Any], rules: Any, match: Match | None = None) -> tuple[Records, Records]:
    """The records the objects path (decide, then encode_change and encode_reply) writes."""
    message = to_message(*decode(orjson.dumps(doc)))
    match = match or classify(doc["text"], rules)
    assert match is not None
    decision = decide(message, match, rules, Source("mo.inbound", 0, 7, doc["message_id"]))
    changes = [(key, encode_change(event, EMITTED)) for key, event in decision.changes]
    reply = decision.reply
    replies = [] if reply is None else [(reply.to.encode(), encode_reply(reply, EMITTED))]
    return changes, replies


def _encoded(doc: dict[str, Any], rules: Any, match: Match | None = None) -> tuple[Records, Records]:
    match = match or classify(doc["text"], rules)
    assert match is not None
    changes: list[tuple[bytes, bytes]] = []
    replies: list[tuple[bytes, bytes]] = []
    where = ("mo.inbound", 0, 7)
    decide_encoded(doc, doc["received_at"], match, rules, where, orjson.dumps(EMITTED), changes, replies)
    return changes, replies


@pytest.mark.parametrize("text", ["STOP", "START", "HELP", "please remove me from your list", "Stop please"])
def test_a_plan_is_made_once_per_match_whatever_the_context_and_its_records_are_the_objects_paths(
    text: str,
) -> None:
    """A shape plan: its pieces hold markers for the MO's account, subaccount, sender and channel
    (the reply text names the sender), filled in the join; one per match and whether the MO names
    a subaccount, so MOs from new accounts and senders make none."""
    rules = default_rulebook().base
    first = _doc(text, "m-1")
    assert _encoded(first, rules) == _expected(first, rules)
    assert len(rules.plans) == 1
    again = _doc(text, "m-2")  # another MO, same match: the plan is reused
    assert _encoded(again, rules) == _expected(again, rules)
    others = [
        _doc(text, "m-3", sender="55555"),  # the reply names the sender: filled in, not a plan of its own
        _doc(text, "m-4", account='o"thér\\'),  # JSON escapes and UTF-8 in the filled values
        {**_doc(text, "m-5"), "channel": "whatsapp"},
    ]
    for doc in others:
        assert _encoded(doc, rules) == _expected(doc, rules)
    assert len(rules.plans) == 1
    with_sub = {**_doc(text, "m-6"), "subaccount_id": "branch-1"}  # a subaccount: scopes of its own kind
    assert _encoded(with_sub, rules) == _expected(with_sub, rules)
    other_sub = {**_doc(text, "m-7", sender="55555"), "subaccount_id": "branch-2"}
    assert _encoded(other_sub, rules) == _expected(other_sub, rules)
    assert len(rules.plans) == 2


def test_a_phrase_makes_one_match_per_text_found() -> None:
    """Phrase matches are built per message; the plans are filed by match object, so a phrase
    returns the same object for the same text (or every phrased STOP would miss)."""
    rules = default_rulebook().base
    first = classify("please remove me from your list", rules)
    second = classify("Please REMOVE ME from this list!", rules)
    assert first is not None
    assert first is second
    assert rules.phrases is not None
    item = next(item for item in rules.phrases.items if first in item.found.values())
    for n in range(PHRASE_TEXTS_MAX + 10):  # past the bound: new matches, the kept ones unchanged
        item.match(f"text {n}")
    assert len(item.found) == PHRASE_TEXTS_MAX
    assert item.match("text 0") is item.match("text 0")
    assert item.match(f"text {PHRASE_TEXTS_MAX + 5}") is not item.match(f"text {PHRASE_TEXTS_MAX + 5}")


@pytest.mark.parametrize("text", ["STOP", "START", "HELP", "Stop please"])
def test_without_the_c_extension_the_python_join_fills_the_shape_plans(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """An install without a C compiler: no join_planned, and the Python join fills the markers."""
    monkeypatch.setattr(decide_module, "join_planned", None)
    monkeypatch.setattr(decide_module, "join_keyword_records", python_join)
    rules = default_rulebook().base
    docs = [
        _doc(text, "m-1"),
        _doc(text, "m-2", sender="55555", account='o"thér\\'),
        {**_doc(text, "m-3"), "subaccount_id": "branch-1", "channel": "whatsapp"},
    ]
    for doc in docs:
        assert _encoded(doc, rules) == _expected(doc, rules)
    assert len(rules.plans) == 2  # one shape without a subaccount, one with


def test_a_keyword_with_a_control_character_of_its_own_is_planned_per_context() -> None:
    """A keyword that holds 0x01 (a provider signal's keyword is the subscriber's text) in a reply
    that names it: in a shape plan's text it would read as a marker, so its plans are per context."""
    base = default_rulebook().base
    rules = dataclasses.replace(
        base, replies={**base.replies, Intent.OPT_OUT: {"*": "{keyword} from {sender}"}}
    )
    stop = classify("STOP", rules)
    assert stop is not None
    match = dataclasses.replace(stop, keyword="ST\x01aOP \x01n")
    for n, sender in enumerate(("12345", "55555")):
        doc = _doc("STOP", f"m-{n}", sender=sender)
        assert _encoded(doc, rules, match) == _expected(doc, rules, match)
    assert [plan for key, plan in rules.plans.items() if len(key) == 2] == [None]


def _per_context_rules() -> Any:
    """The default rules with an opt-out reply that holds a 0x01 of its own: planned per context."""
    base = default_rulebook().base
    return dataclasses.replace(
        base, replies={**base.replies, Intent.OPT_OUT: {"*": "bye \x01a from {sender}"}}
    )


def test_a_reply_with_a_control_character_of_its_own_is_planned_per_context() -> None:
    """A rules file's reply holding 0x01 (which would read as a marker) gets a plan per context,
    as before shape plans: the same records either way."""
    rules = _per_context_rules()
    for n, sender in enumerate(("12345", "55555", "12345")):
        doc = _doc("STOP", f"m-{n}", sender=sender)
        assert _encoded(doc, rules) == _expected(doc, rules)
    shapes = [key for key in rules.plans if len(key) == 2]
    contexts = [key for key in rules.plans if len(key) == 5]
    assert [rules.plans[key] for key in shapes] == [None]  # the match's shape: none, per context instead
    assert len(contexts) == 2  # one per sender


def test_the_plans_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans per context (the only ones that grow with the traffic) are bounded: full, the
    kept plans go and are made again."""
    monkeypatch.setattr(decide_module, "_PLANS_MAX", 3)
    rules = _per_context_rules()
    sizes = []
    for n in range(7):
        doc = _doc("STOP", f"m-{n}", account=f"acc-{n}")
        assert _encoded(doc, rules) == _expected(doc, rules)
        sizes.append(len(rules.plans))
    assert max(sizes) == 3  # the bound was reached, never passed
    assert sizes[-1] < 3  # and the plans were let go once


def test_plans_belong_to_their_rule_set() -> None:
    """Not compared, not copied by dataclasses.replace: a rule set built from another (other
    replies) starts with no plans."""
    rules = default_rulebook().base
    _encoded(_doc("STOP", "m-1"), rules)
    copy = dataclasses.replace(rules)
    assert copy == rules
    assert copy.plans == {}
    assert len(rules.plans) == 1


def _planned(doc: dict[str, Any], rules: Any) -> bool | None:
    """What join_planned answers for ``doc`` (None: the extension was not built)."""
    if decide_module.join_planned is None:
        return None
    match = classify(doc["text"], rules)
    d = decide_module
    heads = (CHANGE_HEAD, d._REPLY_HEAD)
    where = ("mo.inbound", 0, 7)
    received, emitted = doc["received_at"], orjson.dumps(EMITTED)
    return bool(
        d.join_planned([], [], *heads, doc, received, match, rules.plans, *where, emitted, d.PHONE_CHANNELS)
    )


@pytest.mark.parametrize(
    ("changed", "planned"),
    [
        ({}, True),  # E.164 subscriber, short code, sms: the C call does it all
        ({"to": "+14155550199"}, True),  # an E.164 sender
        ({"channel": "whatsapp"}, True),
        ({"from": "whatsapp:+15550001111"}, False),  # a prefixed subscriber: canonicalized in Python
        ({"from": "07700 900123"}, False),  # a national number
        ({"to": "sms:12345"}, False),  # a prefixed sender
        ({"to": "+1 415"}, False),  # a sender that starts like E.164 and is not
        ({"channel": "email"}, False),  # not a phone channel
    ],
)
def test_join_planned_answers_only_for_canonical_parties(changed: dict[str, Any], planned: bool) -> None:
    if decide_module.join_planned is None:
        pytest.skip("the C extension was not built: Python decides every MO")
    rules = default_rulebook().base
    first = _doc("STOP", "m-0") | changed
    assert _planned(first, rules) is False  # no plan yet: Python decides and makes it
    assert _encoded(first, rules) == _expected(first, rules)
    doc = _doc("STOP", "m-1") | changed
    assert _planned(doc, rules) is planned
    assert _encoded(doc, rules) == _expected(doc, rules)  # whichever path, the same records


def test_the_c_call_and_the_python_path_write_the_same_records(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [_doc(text, f"m-{n}") for n, text in enumerate(["STOP", "START", "HELP", "STOP", "Stop please"])]
    rules = default_rulebook().base
    with_c = [_encoded(doc, rules) for doc in docs]
    monkeypatch.setattr(decide_module, "join_planned", None)
    rules = default_rulebook().base
    assert [_encoded(doc, rules) for doc in docs] == with_c == [_expected(doc, rules) for doc in docs]


@pytest.mark.parametrize(
    ("stamp", "planned"),
    [
        ("2026-11-24T10:00:00Z", True),
        ("2026-11-24T10:00:00.1Z", True),
        ("2026-11-24T10:00:00.123Z", True),
        ("2026-11-24T10:00:00.123456Z", True),
        ("2026-11-24T10:00:00.000000Z", True),  # canonical already
        ("2026-11-24T10:00:00.Z", False),  # the forms below are parsed in Python
        ("2026-11-24T10:00:00.5+01:00", False),
        ("2026-11-24t10:00:00.123456z", False),
        ("2026-11-24T10:00:00+00:00", False),
        ("2026-11-24 10:00:00Z", False),
    ],
)
def test_the_c_call_makes_the_received_time_canonical_as_python_does(
    stamp: str, planned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """decide_encoded takes the received time as validated; the C call writes the canonical form
    of the common UTC forms, and leaves the others to canonical_instant."""
    if stamp in ("2026-11-24T10:00:00.Z", "2026-11-24 10:00:00Z"):
        pytest.importorskip("worker.events._joined")  # decode refuses these: only the C answer is checked
        rules = default_rulebook().base
        _encoded(_doc("STOP", "m-0"), rules)
        assert _planned(_doc("STOP", "m-1") | {"received_at": stamp}, rules) is False
        return
    rules = default_rulebook().base
    _encoded(_doc("STOP", "m-0"), rules)  # the plan
    doc = _doc("STOP", "m-1") | {"received_at": stamp}
    if decide_module.join_planned is not None:
        assert _planned(doc, rules) is planned
    with_c = _encoded(doc, rules)
    canonical = with_c[0][0][1]
    assert b'"occurred_at":"2026-11-24T' in canonical
    monkeypatch.setattr(decide_module, "join_planned", None)
    assert _encoded(doc, default_rulebook().base) == with_c == _expected(doc, rules)
