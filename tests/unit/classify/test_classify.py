"""worker.classify.decide: what a text means, and the changes and reply a keyword message leads to."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.classify.decide import Decision, classify, decide
from worker.classify.rules import (
    BUILTIN_LAYER,
    BUILTIN_REPLIES,
    BUILTIN_RULES,
    Layer,
    Rule,
    RuleSet,
    compile_layers,
)
from worker.classify.scope import block_key, covering_scopes
from worker.constants import ALL_CHANNELS
from worker.model import (
    Action,
    Category,
    InboundMessage,
    Intent,
    MatchMode,
    ReplyRequest,
    Scope,
    ScopeLevel,
    Source,
    Target,
)

BUILTIN = compile_layers([BUILTIN_LAYER])
KEYWORDS = [(keyword, rule.intent) for rule in BUILTIN_RULES for keyword in rule.keywords]

MESSAGE = InboundMessage(
    message_id="m-1",
    channel="sms",
    sender="12345",
    address="+15550001111",
    account_id="acc",
    subaccount_id="sub",
    text="STOP",
    received_at="2026-11-24T10:00:00.000000Z",
)
SOURCE = Source("mo.inbound", 3, 42, "m-1")


def _decide(
    text: str, rules: RuleSet = BUILTIN, message: InboundMessage = MESSAGE, source: Source = SOURCE
) -> Decision:
    match = classify(text, rules)
    assert match is not None, text
    return decide(dataclasses.replace(message, text=text), match, rules, source)


def _rules(*rules: Rule, replies: dict[Intent, str | None] | None = None) -> RuleSet:
    return compile_layers([BUILTIN_LAYER, Layer(True, rules, MappingProxyType(replies or {}))])


# --- classify: whole-message matching ------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "intent"), KEYWORDS)
def test_builtin_keywords(keyword: str, intent: Intent) -> None:
    match = classify(keyword, BUILTIN)
    assert match is not None
    assert match.rule.intent is intent


_PADDING = st.text(alphabet=" \t\n\u00a0\u3000.!?,;:-_'\"“”‘’«»()[]*~😡🛑✋🏽👍🙏❤️\u200b", max_size=6)
_INVISIBLE = st.sampled_from(["", "", "", "\u200b", "\u200d", "\ufe0f", "\u00ad"])
_SPACE = st.text(alphabet=" \t\n\u00a0\u3000", min_size=1, max_size=3)


@st.composite
def surface_forms(draw: st.DrawFn) -> tuple[str, Intent]:
    """A built-in keyword as a subscriber might type it."""
    keyword, intent = draw(st.sampled_from(KEYWORDS))
    full_width = draw(st.booleans())
    out = []
    for char in keyword:
        if char == " ":
            out.append(draw(_SPACE))
            continue
        char = char.upper() if draw(st.booleans()) else char.lower()
        if full_width:
            char = chr(ord(char) + 0xFEE0)
        out.append(char + draw(_INVISIBLE))
    return draw(_PADDING) + "".join(out) + draw(_PADDING), intent


@given(surface_forms())
def test_any_surface_form_of_a_keyword_classifies_to_its_intent(form: tuple[str, Intent]) -> None:
    text, intent = form
    match = classify(text, BUILTIN)
    assert match is not None, repr(text)
    assert match.rule.intent is intent


# Words that make a keyword the start of a sentence ("stop by", "end of", "cancel my") and words
# that are neither courtesy nor negation before one ("we stop", "the end").
_SENTENCE_AFTER = ["by", "the", "of", "my", "at", "when", "date", "is", "with", "to"]
_BEFORE = ["we", "the", "when", "can", "i", "did", "bus", "weekend"]
#: Keywords that are also phrases found anywhere ("how do I unsubscribe?"): excluded below.
_ANYWHERE = {"UNSUBSCRIBE", "UNSUB", "OPTOUT", "OPT OUT", "OPT-OUT", "RESUBSCRIBE"}
#: ... and the marketing opt-outs, phrases too ("stop marketing", "unsubscribe" anywhere).
_ANYWHERE |= {keyword for rule in BUILTIN_RULES if rule.name == "stop_marketing" for keyword in rule.keywords}


@given(
    keyword=st.sampled_from([k for k in KEYWORDS if k[0] not in _ANYWHERE]),
    before=st.lists(st.sampled_from(_BEFORE), max_size=2),
    after=st.sampled_from(_SENTENCE_AFTER),
    tail=st.lists(st.sampled_from(["later", "it", "now", "please", "thanks"]), max_size=2),
)
def test_a_keyword_that_starts_or_sits_in_a_sentence_does_not_match(
    keyword: tuple[str, Intent], before: list[str], after: str, tail: list[str]
) -> None:
    text = " ".join([*before, keyword[0], after, *tail])
    assert classify(text, BUILTIN) is None, text
    assert classify(text + "?", BUILTIN) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "Don't stop!",
        "please stop by later",
        # "Stop it" was here until issue 15, which reads it as an order: "stop it now", "Stop that".
        "stops",
        "helpful",
        "start-stop",
        "",
        "😡",
        "we need to stop at the gas station",
        "the end of the film was great",
        "I can't quit now, too busy",
        "cancel my appointment please",
        "start time?",
        "stop motion film",
        "fin de semana en la playa",
        "para mañana está bien",
        "alto riesgo",
        "non smettere di scrivermi",
        "bitte nicht abmelden",
        "I don't want to unsubscribe",
    ],
)
def test_ordinary_messages_do_not_match(text: str) -> None:
    assert classify(text, BUILTIN) is None


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("STOP STOP", MatchMode.LEADING),
        ("unsubscribe me", MatchMode.LEADING),
        ("I said STOP", MatchMode.PHRASE),
        ("ok stop, thanks!", MatchMode.LEADING),
        ("Stop. Thank you", MatchMode.LEADING),
        ("STOP 12345", MatchMode.LEADING),
        ("stop globex", MatchMode.LEADING),
        ("STOP Globex Pharmacy", MatchMode.LEADING),
        ("stop please and thanks", MatchMode.LEADING),
        ("could you take me off this list", MatchMode.PHRASE),
        ("no further promos!!", MatchMode.PHRASE),
        ("I want them to quit spamming me", MatchMode.PHRASE),
    ],
)
def test_requests_that_are_not_a_bare_keyword_opt_out(text: str, mode: MatchMode) -> None:
    match = classify(text, BUILTIN)
    assert match is not None, text
    assert match.rule.intent is Intent.OPT_OUT
    assert match.mode is mode


# --- decide: opt-out ------------------------------------------------------------------------------


def test_opt_out_creates_one_account_block_on_the_channel() -> None:
    decision = _decide("Stop!")
    assert decision.intent is Intent.OPT_OUT
    assert len(decision.changes) == 1
    key, event = decision.changes[0]
    scope = Scope(ScopeLevel.ACCOUNT, "acc", None, None, "sms")
    assert event.action is Action.BLOCK
    assert event.scope == scope
    assert key == block_key(scope, MESSAGE.address)
    assert event.address == MESSAGE.address
    assert event.keyword == "STOP"
    assert event.rule == "stop"
    assert event.reason == "opt_out_keyword"
    assert event.source == SOURCE
    assert event.occurred_at == MESSAGE.received_at
    assert len(event.event_id) == 32


def test_stop_all_blocks_every_channel() -> None:
    ((_, event),) = _decide("stop all").changes
    assert event.scope == Scope(ScopeLevel.ACCOUNT, "acc", None, None, ALL_CHANNELS)
    assert event.rule == "stop_all"


@pytest.mark.parametrize(
    ("level", "all_channels", "subaccount_id", "expected"),
    [
        (ScopeLevel.SUBACCOUNT, False, "sub", Scope(ScopeLevel.SUBACCOUNT, "acc", "sub", None, "sms")),
        (ScopeLevel.SUBACCOUNT, False, None, Scope(ScopeLevel.ACCOUNT, "acc", None, None, "sms")),
        (ScopeLevel.SUBACCOUNT, True, "sub", Scope(ScopeLevel.SUBACCOUNT, "acc", "sub", None, ALL_CHANNELS)),
        (ScopeLevel.SENDER, False, "sub", Scope(ScopeLevel.SENDER, "acc", None, "12345", "sms")),
        (ScopeLevel.SENDER, True, None, Scope(ScopeLevel.SENDER, "acc", None, "12345", ALL_CHANNELS)),
    ],
)
def test_opt_out_uses_the_rules_level_and_channels(
    level: ScopeLevel, all_channels: bool, subaccount_id: str | None, expected: Scope
) -> None:
    rules = _rules(Rule("halt", Intent.OPT_OUT, ("HALT",), level=level, all_channels=all_channels))
    message = dataclasses.replace(MESSAGE, subaccount_id=subaccount_id)
    ((key, event),) = _decide("halt", rules, message).changes
    assert event.scope == expected
    assert key == block_key(expected, MESSAGE.address)
    assert event.rule == "halt"
    assert event.keyword == "HALT"


# --- decide: opt-in and help ----------------------------------------------------------------------


@pytest.mark.parametrize("subaccount_id", ["sub", None])
def test_opt_in_unblocks_every_covering_scope(subaccount_id: str | None) -> None:
    message = dataclasses.replace(MESSAGE, subaccount_id=subaccount_id)
    decision = _decide("START", message=message)
    assert decision.intent is Intent.OPT_IN
    scopes = covering_scopes(Target("acc", subaccount_id, "12345", "sms"))
    # A plain START lifts every block on those scopes: the full ones and the marketing-only ones.
    expected = [(s, c) for c in (Category.ALL, Category.MARKETING) for s in scopes]
    assert [(event.scope, event.category) for _, event in decision.changes] == expected
    assert [key for key, _ in decision.changes] == [block_key(s, MESSAGE.address, c) for s, c in expected]
    assert all(event.action is Action.UNBLOCK for _, event in decision.changes)
    assert all(event.reason == "opt_in_keyword" for _, event in decision.changes)
    assert len({event.event_id for _, event in decision.changes}) == len(expected)


def test_a_marketing_opt_out_is_its_own_block_and_a_marketing_opt_in_lifts_only_it() -> None:
    stop = Rule("stop_marketing", Intent.OPT_OUT, ("STOP MARKETING",), category=Category.MARKETING)
    resume = Rule("resume_marketing", Intent.OPT_IN, ("RESUME MARKETING",), category=Category.MARKETING)
    rules = _rules(stop, resume)
    ((key, block),) = _decide("stop marketing", rules).changes
    assert block.category is Category.MARKETING
    assert orjson.loads(key)[-1] == "marketing"
    assert key != block_key(block.scope, block.address)  # a full block on that scope is another block
    lifted = _decide("resume marketing", rules).changes
    assert lifted
    assert {event.category for _, event in lifted} == {Category.MARKETING}
    assert key in {k for k, _ in lifted}


def test_opt_in_lifts_the_block_of_each_opt_out_level() -> None:
    unblocked = {event.scope for _, event in _decide("start").changes}
    for level in ScopeLevel:
        for all_channels in (False, True):
            rules = _rules(Rule("halt", Intent.OPT_OUT, ("HALT",), level=level, all_channels=all_channels))
            ((_, block),) = _decide("halt", rules).changes
            assert block.scope in unblocked, block.scope


def test_help_changes_nothing_but_replies() -> None:
    decision = _decide("Help?")
    assert decision.intent is Intent.HELP
    assert decision.changes == ()
    assert decision.reply is not None
    assert decision.reply.text == BUILTIN_REPLIES[Intent.HELP]
    assert decision.reply.intent is Intent.HELP


# --- ids --------------------------------------------------------------------------------------------


def _ids(text: str, message: InboundMessage, source: Source = SOURCE) -> list[str]:
    decision = _decide(text, message=message, source=source)
    ids = [event.event_id for _, event in decision.changes]
    return [*ids, decision.reply.reply_id] if decision.reply else ids


def test_same_input_same_decision() -> None:
    for text in ("stop", "start", "help", "stop all"):
        assert _decide(text) == _decide(text)


@pytest.mark.parametrize("text", ["stop", "start", "help"])
def test_redelivered_message_gets_the_same_ids(text: str) -> None:
    # A retried webhook: same message id, another record.
    assert _ids(text, MESSAGE) == _ids(text, MESSAGE, Source("mo.inbound", 7, 9000, "m-1"))


@pytest.mark.parametrize("text", ["stop", "start", "help"])
@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(MESSAGE, message_id="m-2"),
        dataclasses.replace(MESSAGE, account_id="acc2"),
    ],
)
def test_another_message_gets_other_ids(text: str, other: InboundMessage) -> None:
    mine, theirs = _ids(text, MESSAGE), _ids(text, other)
    assert len(set(mine)) == len(mine)
    assert not set(mine) & set(theirs)


def test_ids_are_lowercase_hex() -> None:
    for event_id in [i for text in ("stop", "start", "help") for i in _ids(text, MESSAGE)]:
        assert len(event_id) == 32
        int(event_id, 16)
        assert event_id == event_id.lower()


# --- replies --------------------------------------------------------------------------------------


def test_reply_fields() -> None:
    reply = _decide("stop").reply
    assert reply is not None
    template = BUILTIN_REPLIES[Intent.OPT_OUT]
    assert template is not None
    assert reply == ReplyRequest(
        reply_id=reply.reply_id,
        intent=Intent.OPT_OUT,
        account_id="acc",
        subaccount_id="sub",
        channel="sms",
        to=MESSAGE.address,
        sender=MESSAGE.sender,
        text=template.replace("{sender}", "12345"),
        keyword="STOP",
        rule="stop",
        source=SOURCE,
        occurred_at=MESSAGE.received_at,
    )
    assert "12345" in reply.text


def test_reply_placeholders() -> None:
    rules = _rules(
        Rule(
            "halt",
            Intent.OPT_OUT,
            ("HALT",),
            reply="{keyword} ok: {account} will not text you from {sender}. ({sender})",
            has_reply_override=True,
        )
    )
    reply = _decide("halt", rules).reply
    assert reply is not None
    assert reply.text == "HALT ok: acc will not text you from 12345. (12345)"


@pytest.mark.parametrize("disabled", [None, ""])
def test_no_reply_when_disabled(disabled: str | None) -> None:
    rules = _rules(replies={Intent.OPT_OUT: disabled})
    decision = _decide("stop", rules)
    assert decision.reply is None
    assert len(decision.changes) == 1


def test_placeholder_values_are_not_expanded_again() -> None:
    rules = _rules(replies={Intent.OPT_OUT: "Bye from {sender}."})
    message = dataclasses.replace(MESSAGE, sender="{account}")
    reply = _decide("stop", rules, message).reply
    assert reply is not None
    assert reply.text == "Bye from {account}."


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("S T O P", Intent.OPT_OUT),
        ("s.t.o.p", Intent.OPT_OUT),
        ("H-E-L-P", Intent.HELP),
        ("STOP\n\nSent from my Galaxy", Intent.OPT_OUT),
        ("Arret\n--\nJean Tremblay", Intent.OPT_OUT),
        ("  start\r\n> Your code is 1234", Intent.OPT_IN),
    ],
)
def test_spelled_out_and_first_line_keywords(text: str, intent: Intent) -> None:
    match = classify(text, BUILTIN)
    assert match is not None, text
    assert match.rule.intent is intent


@pytest.mark.parametrize("text", ["o k", "a b c", "ok\nsee you at the bus stop", "thanks!\nStop by anytime"])
def test_spelled_and_multiline_ordinary_messages_stay_ordinary(text: str) -> None:
    assert classify(text, BUILTIN) is None
