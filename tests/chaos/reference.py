"""What Postgres must hold after a run, computed from the input alone with the same pure step the
classifier runs (``classify_records``, as ``optout classify`` does) and last-writer-wins."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import TopicPartition

from tests.unit.factories import FakeRecord
from worker.classify.rulesfile import load_rules
from worker.classify.scope import change_key
from worker.events.ordering import latest_per_block
from worker.events.outgoing import decode_change
from worker.model import Intent
from worker.stream.batch import BatchOutput, classify_records

#: A state row as the table holds it: address, account, level, subaccount, sender, channel,
#: category, action, event id.
StateRow = tuple[str, str, str, str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Reference:
    event_ids: frozenset[str]
    state: frozenset[StateRow]
    reply_ids: frozenset[str]
    optouts: int
    """Opt-out MOs in the input."""
    changes_after: list[int]
    """Per input record (in production order), how many distinct change events exist up to it."""


def compute_reference(records: list[tuple[int, bytes | None, bytes | None]], topic: str) -> Reference:
    rulebook = load_rules(None)
    seen: set[str] = set()
    events = []
    replies: set[str] = set()
    changes_after: list[int] = []
    optouts = 0
    for offset, (partition, key, value) in enumerate(records):
        out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="reference")
        classify_records(
            TopicPartition(topic, partition),
            [FakeRecord(topic, partition, offset, 0, key, value)],
            rulebook,
            out,
        )
        optouts += out.intents.get(Intent.OPT_OUT, 0)
        for _, raw in out.changes:
            event = decode_change(raw)
            if event.event_id not in seen:
                seen.add(event.event_id)
                events.append(event)
        replies.update(orjson.loads(raw)["reply_id"] for _, raw in out.replies)
        changes_after.append(len(seen))
    winners = latest_per_block((change_key(e), e) for e in events)
    state = frozenset(
        (
            e.address,
            e.scope.account_id,
            e.scope.level.value,
            e.scope.subaccount_id or "",
            e.scope.sender or "",
            e.scope.channel,
            e.category.value,
            e.action.value,
            e.event_id,
        )
        for e in winners.values()
    )
    return Reference(frozenset(seen), state, frozenset(replies), optouts, changes_after)
