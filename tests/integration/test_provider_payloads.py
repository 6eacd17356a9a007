"""Provider payloads end to end: an Infobip body with two MOs, a Twilio form, a CM.com message and a
WhatsApp "Stop promotions" button, each on its own topic in its own format, through the classifier
and the projector into Postgres (real broker, real Postgres, no mocks)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.helpers import connection, mo, produce, read_topic, settings_for, values
from tests.unit.events.providers.payloads import CMCOM, infobip_body, twilio_form, whatsapp_button
from worker.stream.classifier import run_classifier
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

RULES = {
    "version": 1,
    "provider_accounts": [
        {"format": "infobip", "provider_account": "*", "account": "acme"},
        {"format": "twilio", "provider_account": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "account": "acme",
         "subaccount": "us"},
        {"format": "whatsapp", "provider_account": "102290129340398", "account": "acme"},
    ],  # CM.com left unmapped on purpose: its blocks go to account "cmcom:<number written to>"
}  # fmt: skip


async def _create(broker: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1) for name in names])
    finally:
        await admin.close()


async def test_every_provider_format_reaches_postgres(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    inputs = {f"mo.{fmt}.{suffix}": fmt for fmt in ("infobip", "twilio", "cmcom", "whatsapp")}
    by_format = {fmt: topic for topic, fmt in inputs.items()}
    await _create(broker, list(inputs))
    rules = tmp_path / "rules.json"
    rules.write_bytes(orjson.dumps(RULES))

    produced_at = time.time()
    await produce(broker, by_format["infobip"], [(None, infobip_body("STOP", "Stop."), None)])
    await produce(
        broker, by_format["twilio"], [(b"+14017122661", twilio_form(), None), (None, b"From=%2B1", None)]
    )
    await produce(broker, by_format["cmcom"], [(None, orjson.dumps(CMCOM), None)])
    await produce(broker, by_format["whatsapp"], [(None, whatsapp_button(), None)])
    await produce(broker, topics.inbound, [(None, mo("canon-1", "STOP", "+15550009999"), None)])

    settings = settings_for(
        broker,
        topics,
        group_suffix,
        OPTOUT_INPUT_FORMATS=",".join(f"{topic}={fmt}" for topic, fmt in inputs.items()),
        OPTOUT_RULES=str(rules),
    )
    stats = await run_classifier(settings, burst=True)
    assert stats.records == 6  # records, not MOs: the Infobip body holds two
    await run_projector(settings, database_url, burst=True)

    async with connection(database_url) as conn:
        rows = await conn.fetch(
            "SELECT address, account_id, level, subaccount_id, channel, category, rule, keyword, active,"
            " source_topic, occurred_at FROM blocklist_state ORDER BY address"
        )
    state = {(r["address"], r["account_id"], r["subaccount_id"], r["channel"], r["category"], r["rule"],
              r["keyword"], r["source_topic"]) for r in rows if r["active"]}  # fmt: skip
    assert state == {
        ("385916240000", "acme", "", "sms", "all", "stop", "STOP", by_format["infobip"]),
        ("385916240001", "acme", "", "sms", "all", "stop", "STOP", by_format["infobip"]),
        ("+14017122661", "acme", "", "sms", "all", "signal:twilio", "STOP", by_format["twilio"]),
        ("+31612345678", "cmcom:+3197010203040", "", "sms", "all", "stop", "STOP", by_format["cmcom"]),
        ("16505551234", "acme", "", "whatsapp", "marketing", "signal:whatsapp", "Stop promotions",
         by_format["whatsapp"]),
        ("+15550009999", "acme", "", "sms", "all", "stop", "STOP", topics.inbound),
    }  # fmt: skip
    assert all(r["level"] == "account" for r in rows)
    twilio_row = next(r for r in rows if r["address"] == "+14017122661")
    assert abs(twilio_row["occurred_at"].timestamp() - produced_at) < 120  # the record's timestamp

    [letter] = values(await read_topic(broker, topics.dead_letter))
    assert (letter["error"]["code"], letter["source"]["topic"]) == ("missing_field", by_format["twilio"])
