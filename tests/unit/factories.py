"""Test data shared by the unit and integration tests: inbound messages, change events, records.

Each factory has the defaults most tests want and takes keyword arguments for the rest, so a test
spells out only what it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition

from worker.model import Action, ChangeEvent, MatchMode, Scope, ScopeLevel, Source


@dataclass(frozen=True)
class FakeRecord:
    """What :class:`worker.stream.batch.RecordLike` needs of a consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def where(records: Sequence[FakeRecord]) -> TopicPartition:
    """The partition a batch of fake records was read from: the first one's (a record taken from a
    record batch has none of its own; the loop passes the partition along)."""
    return (
        TopicPartition(records[0].topic, records[0].partition) if records else TopicPartition("mo.inbound", 0)
    )


def inbound_doc(
    text: str = "STOP",
    *,
    message_id: str = "m-1",
    channel: str = "sms",
    address: str = "+15550000001",
    sender: str = "12345",
    account: str = "acme",
    subaccount: str | None = None,
    received_at: str = "2026-11-24T12:00:00Z",
    **fields: Any,
) -> dict[str, Any]:
    """An inbound-message document (``schemas/inbound-message.v1.json``), keys in the schema's order.

    ``address`` is the subscriber (``from``), ``sender`` the number written to (``to``); ``fields``
    replace or add raw keys, wrong types included (``text=5``, ``account_id=""``).
    """
    doc: dict[str, Any] = {
        "message_id": message_id,
        "channel": channel,
        "from": address,
        "to": sender,
        "account_id": account,
    }
    if subaccount is not None:
        doc["subaccount_id"] = subaccount
    doc["text"] = text
    doc["received_at"] = received_at
    return doc | fields


def inbound_json(text: str = "STOP", **options: Any) -> bytes:
    """:func:`inbound_doc` as a record value."""
    return orjson.dumps(inbound_doc(text, **options))


def change_event(
    address: str = "+15550000001",
    action: Action | str = Action.BLOCK,
    *,
    level: ScopeLevel | str = ScopeLevel.ACCOUNT,
    account: str = "acme",
    scope_id: str | None = None,
    channel: str = "sms",
    at: str = "2026-11-24T12:00:00.000000Z",
    event_id: str = "e1",
    keyword: str | None = "STOP",
    rule: str | None = "stop",
    reason: str = "r",
    source: Source | None = None,
    language: str | None = None,
    match: MatchMode | None = None,
) -> ChangeEvent:
    """A change event; ``scope_id`` is the subaccount or the sender, as ``level`` says."""
    level = ScopeLevel(level)
    scope = Scope(
        level,
        account,
        scope_id if level is ScopeLevel.SUBACCOUNT else None,
        scope_id if level is ScopeLevel.SENDER else None,
        channel,
    )
    return ChangeEvent(
        event_id,
        Action(action),
        scope,
        address,
        keyword,
        rule,
        reason,
        source or Source("mo.inbound", 0, 0, "m"),
        at,
        language,
        match,
    )


def source_of(event: ChangeEvent) -> Source:
    """The source of an event that came from an inbound record (a test's precondition, checked)."""
    assert event.source is not None, f"event {event.event_id} has no source record"
    return event.source


def transaction_sender(tp: TopicPartition) -> tuple[Any, Any]:
    """An aiokafka 0.14 ``TransactionManager`` in a transaction that is adding ``tp``, and the
    least of a sender its producer handlers need (``_txn_manager``, ``_retry_backoff``): for the
    tests that answer aiokafka's own handlers with real responses."""
    from types import SimpleNamespace

    from aiokafka.producer.transaction_manager import TransactionManager

    manager = TransactionManager("t-0", 60000)
    manager.set_pid_and_epoch(1, 0)
    manager.begin_transaction()
    manager.maybe_add_partition_to_txn(tp)
    return manager, SimpleNamespace(_txn_manager=manager, _retry_backoff=0.1)
