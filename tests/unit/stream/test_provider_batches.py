"""classify_records on a provider topic: several MOs per record, signals decided without the text,
dead letters for what the provider decoder refuses."""

from __future__ import annotations

from typing import Any

import orjson

from tests.unit.events.providers.payloads import (
    infobip_body,
    twilio_form,
    whatsapp_button,
    whatsapp_preference,
)
from tests.unit.factories import FakeRecord, inbound_json, where
from worker.classify.rulesfile import rulebook_from_document
from worker.errors import DeadLetterCode
from worker.stream.batch import BatchOutput, classify_records

EMITTED = "2026-11-24T12:00:00.000000Z"
BOOK = rulebook_from_document(
    {
        "version": 1,
        "provider_accounts": [
            {"format": "infobip", "provider_account": "*", "account": "acme"},
            {"format": "twilio", "provider_account": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "account": "acme",
             "subaccount": "us"},
            {"format": "whatsapp", "provider_account": "102290129340398", "account": "acme"},
        ],
    }
)  # fmt: skip


def _run(topic: str, fmt: str, *values: bytes) -> BatchOutput:
    out = BatchOutput(emitted_at=EMITTED, worker_version="9.9.9")
    records = [FakeRecord(topic, 1, 10 + i, 1764000000000, None, v) for i, v in enumerate(values)]
    classify_records(where(records), records, BOOK, out, fmt)
    return out


def _changes(out: BatchOutput) -> list[dict[str, Any]]:
    return [orjson.loads(value) for _, value in out.changes]


def test_an_infobip_body_with_two_stops_blocks_both() -> None:
    out = _run("mo.infobip", "infobip", infobip_body("STOP", "Stop.", "see you"))
    changes = _changes(out)
    assert [(c["action"], c["address"], c["scope"]["account_id"], c["rule"]) for c in changes] == [
        ("block", "385916240000", "acme", "stop"),
        ("block", "385916240001", "acme", "stop"),
    ]
    assert {c["source"]["offset"] for c in changes} == {10}  # one record
    assert len({c["source"]["message_id"] for c in changes}) == 2
    assert out.consumed == 1
    assert sum(out.intents.values()) == 3  # three MOs: two opt-outs, one chat
    assert ("mo.infobip", 1) in out.newest_received


def test_twilio_opt_out_type_decides_not_the_text() -> None:
    start = twilio_form(Body="UNSTOP", OptOutType="START", MessageSid="SM2")
    out = _run("mo.twilio", "twilio", start)
    changes = _changes(out)
    assert changes
    assert {c["action"] for c in changes} == {"unblock"}
    assert {c["category"] for c in changes} == {"all", "marketing"}  # a plain START lifts both
    assert {(c["rule"], c["keyword"]) for c in changes} == {("signal:twilio", "UNSTOP")}
    assert changes[0]["scope"]["account_id"] == "acme"


def test_twilio_help_is_a_reply_only() -> None:
    out = _run("mo.twilio", "twilio", twilio_form(Body="info", OptOutType="HELP"))
    assert out.changes == []
    [(key, value)] = out.replies
    reply = orjson.loads(value)
    assert (key, reply["intent"], reply["rule"], reply["subaccount_id"]) == (
        b"+14017122661",
        "help",
        "signal:twilio",
        "us",
    )


def test_a_whatsapp_stop_promotions_button_blocks_marketing_on_whatsapp() -> None:
    out = _run("mo.whatsapp", "whatsapp", whatsapp_button())
    [(key, value)] = out.changes
    change = orjson.loads(value)
    assert (change["action"], change["scope"]["channel"], change["rule"], change["keyword"]) == (
        "block", "whatsapp", "signal:whatsapp", "Stop promotions"
    )  # fmt: skip
    assert change["category"] == "marketing"
    assert orjson.loads(key)[-1] == "marketing"  # a marketing block is a block of its own
    assert out.replies == []  # the opt-out reply says "no more messages": not for marketing only


def test_a_whatsapp_resume_preference_lifts_marketing_blocks_only() -> None:
    out = _run("mo.whatsapp", "whatsapp", whatsapp_preference("resume"))
    changes = _changes(out)
    assert changes
    assert {(c["action"], c["category"]) for c in changes} == {("unblock", "marketing")}


def test_a_twilio_stop_blocks_everything() -> None:
    out = _run("mo.twilio", "twilio", twilio_form())
    [change] = _changes(out)
    assert (change["action"], change["category"], change["rule"], change["keyword"]) == (
        "block", "all", "signal:twilio", "STOP"
    )  # fmt: skip
    [(_, reply)] = out.replies
    assert orjson.loads(reply)["intent"] == "opt_out"


def test_a_canonical_document_with_intent_is_a_signal_whatever_its_text() -> None:
    out = _run("mo.inbound", "canonical", inbound_json("hello there", intent="opt_out"))
    [change] = _changes(out)
    assert (change["rule"], change["keyword"]) == ("signal:canonical", "hello there")


def test_what_a_provider_decoder_refuses_is_dead_lettered_whole() -> None:
    out = _run("mo.twilio", "twilio", b"From=%2B1", twilio_form())
    assert out.dead_by_code == {DeadLetterCode.MISSING_FIELD: 1}
    letter = orjson.loads(out.dead_letters[0][1])
    assert letter["source"]["topic"] == "mo.twilio"
    assert "AccountSid" in letter["error"]["detail"]
    assert out.consumed == 2
    assert len(out.changes) == 1
