"""worker.classify.manual: an operator's or an import's change, validated, and its change event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.classify.manual import (
    REASON_IMPORT,
    REASON_MANUAL,
    ManualChange,
    ManualChangeError,
    imported_event,
    manual_change,
    manual_event,
)
from worker.classify.scope import block_key
from worker.constants import ALL_CHANNELS, MAX_FIELD_BYTES, MAX_NOTE_CHARS
from worker.events.address import Countries
from worker.events.outgoing import decode_change, encode_change
from worker.events.schemas import CHANGE, validator
from worker.model import Action, Category, Scope, ScopeLevel

AT = "2026-12-01T10:00:00.000000Z"
LATER = "2026-12-01T10:01:00.000000Z"
SHA = "ab" * 32

#: Identifier text as a person or an export writes it: any printable character, no surrounding
#: white space (it is dropped), never empty.
identifier = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x85\u2028\u2029"),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() == s and s != "")


@st.composite
def change_fields(draw: st.DrawFn) -> dict[str, str | None]:
    """Valid fields of a manual change (names of FIELDS), some left out."""
    fields: dict[str, str | None] = {"address": draw(identifier), "account": draw(identifier)}
    narrower = draw(st.sampled_from(["none", "subaccount", "sender"]))
    if narrower != "none":
        fields[narrower] = draw(identifier)
    if draw(st.booleans()):
        fields["channel"] = draw(st.sampled_from(["sms", "whatsapp", "*"]))
    if draw(st.booleans()):
        fields["category"] = draw(st.sampled_from(["all", "marketing", "MARKETING"]))
    if draw(st.booleans()):
        fields["action"] = draw(st.sampled_from(["block", "unblock", "Unblock"]))
    if draw(st.booleans()):
        fields["note"] = draw(identifier)
    return fields


def _expected_scope(fields: dict[str, str | None]) -> Scope:
    channel = fields.get("channel") or ALL_CHANNELS
    account = fields["account"]
    assert account is not None
    if fields.get("sender"):
        return Scope(ScopeLevel.SENDER, account, None, fields["sender"], channel)
    if fields.get("subaccount"):
        return Scope(ScopeLevel.SUBACCOUNT, account, fields["subaccount"], None, channel)
    return Scope(ScopeLevel.ACCOUNT, account, None, None, channel)


@given(change_fields())
def test_valid_fields_become_the_change_they_name(fields: dict[str, str | None]) -> None:
    change = manual_change(fields)
    assert change.address == fields["address"]
    assert change.scope == _expected_scope(fields)
    assert change.action is Action((fields.get("action") or "block").lower())
    assert change.category is Category((fields.get("category") or "all").lower())
    assert change.note == fields.get("note")


@given(change_fields(), st.text(" \t", min_size=1, max_size=3))
def test_surrounding_white_space_is_dropped_and_blank_is_absent(
    fields: dict[str, str | None], pad: str
) -> None:
    padded: dict[str, str | None] = {k: None if v is None else pad + v + pad for k, v in fields.items()}
    assert manual_change(padded) == manual_change(fields)
    blanks = dict.fromkeys(("subaccount", "sender", "channel", "category", "action", "note"), pad)
    assert manual_change(blanks | {k: v for k, v in fields.items() if k in ("address", "account")}) == (
        manual_change({"address": fields["address"], "account": fields["account"]})
    )


@given(change_fields())
def test_the_event_is_keyed_by_the_block_identity_and_validates(fields: dict[str, str | None]) -> None:
    change = manual_change(fields)
    key, event = manual_event(change, AT)
    assert key == block_key(change.scope, change.address, change.category)
    assert (event.reason, event.source, event.keyword, event.rule) == (REASON_MANUAL, None, None, None)
    assert (event.occurred_at, event.note, event.category) == (AT, change.note, change.category)
    raw = encode_change(event, LATER)
    assert list(validator(CHANGE).iter_errors(orjson.loads(raw))) == []
    assert decode_change(raw) == event


@given(change_fields())
def test_manual_ids_are_derived_from_the_block_the_action_and_the_instant(
    fields: dict[str, str | None],
) -> None:
    change = manual_change(fields)
    _, first = manual_event(change, AT)
    _, retried = manual_event(change, AT)
    _, later = manual_event(change, LATER)
    flipped = ManualChange(
        Action.UNBLOCK if change.action is Action.BLOCK else Action.BLOCK,
        change.address,
        change.scope,
        change.category,
        change.note,
    )
    _, other_action = manual_event(flipped, AT)
    assert first.event_id == retried.event_id  # a retried command at the same instant: one change
    assert len({first.event_id, later.event_id, other_action.event_id}) == 3


@given(change_fields(), st.integers(1, 10**7))
def test_import_ids_are_derived_from_the_file_the_line_the_block_and_the_instant(
    fields: dict[str, str | None], line: int
) -> None:
    change = manual_change(fields)
    key, event = imported_event(change, AT, SHA, line)
    assert event.reason == REASON_IMPORT
    assert key == block_key(change.scope, change.address, change.category)
    assert imported_event(change, AT, SHA, line) == (key, event)  # the same import run again
    others = {
        imported_event(change, AT, SHA, line + 1)[1].event_id,
        imported_event(change, AT, "cd" * 32, line)[1].event_id,
        imported_event(change, LATER, SHA, line)[1].event_id,
        manual_event(change, AT)[1].event_id,
    }
    assert event.event_id not in others
    assert len(others) == 4


def test_an_instant_in_the_change_wins_over_the_commands() -> None:
    change = manual_change({"address": "+1", "account": "a", "occurred_at": "2026-01-01T01:00:00+01:00"})
    assert change.occurred_at == "2026-01-01T00:00:00.000000Z"
    assert manual_event(change, AT)[1].occurred_at == "2026-01-01T00:00:00.000000Z"
    assert imported_event(change, AT, SHA, 2)[1].occurred_at == "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"account": "a"}, "address is missing"),
        ({"address": "  ", "account": "a"}, "address is missing"),
        ({"address": "+1"}, "account is missing"),
        ({"address": "+1", "account": "a", "subaccount": "s", "sender": "x"}, "not both"),
        ({"address": "+1", "account": "a", "category": "promo"}, "category 'promo' is not all or marketing"),
        ({"address": "+1", "account": "a", "action": "stop"}, "action 'stop' is not block or unblock"),
        ({"address": "+1\x07", "account": "a"}, "address contains the control character U+0007"),
        ({"address": "+1", "account": "a" * (MAX_FIELD_BYTES + 1)}, "account is 257 bytes"),
        ({"address": "+1\udcff", "account": "a"}, "address is not valid UTF-8"),
        ({"address": "+1", "account": "a", "note": "x" * (MAX_NOTE_CHARS + 1)}, "note: at most"),
        ({"address": "+1", "account": "a", "note": "a\x00b"}, "note: at most"),
        ({"address": "+1", "account": "a", "occurred_at": "yesterday"}, "occurred_at 'yesterday' is not"),
        ({"address": "+1", "account": "a", "occurred_at": "2026-01-01T00:00:00"}, "has no UTC offset"),
    ],
)
def test_what_cannot_be_a_change_is_one_line_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ManualChangeError) as raised:
        manual_change(fields)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "written", ["+447700900123", "whatsapp:+447700900123", "tel:+44 7700 900123", "07700 900123"]
)
def test_an_operator_s_address_lands_on_the_key_the_subscriber_s_own_stop_would(written: str) -> None:
    change = manual_change({"address": written, "account": "acme"}, Countries("GB"))
    assert change.address == "+447700900123"
    assert change.scope.channel == ALL_CHANNELS  # a prefix never narrows the block to its channel


def test_an_address_that_is_not_a_number_stays_as_written() -> None:
    change = manual_change({"address": "someone@example.com", "account": "acme", "channel": "email"})
    assert change.address == "someone@example.com"
