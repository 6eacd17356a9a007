"""What Postgres must hold after a run, computed from the input alone with the same pure step the
classifier runs (``classify_records``, as ``optout classify`` does) and last-writer-wins."""

from __future__ import annotations

from collections import Counter
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
    replies_of: dict[bytes, tuple[str, ...]]
    """The reply ids each input record (by its bytes) asks for: a record the input producer sent
    twice (it sends a chunk again after a broker fault) asks for its replies twice, with the same
    ids, whatever the delivery mode."""


def compute_reference(records: list[tuple[int, bytes | None, bytes | None]], topic: str) -> Reference:
    rulebook = load_rules(None)
    seen: set[str] = set()
    events = []
    replies: set[str] = set()
    replies_of: dict[bytes, tuple[str, ...]] = {}
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
        asked = tuple(orjson.loads(raw)["reply_id"] for _, raw in out.replies)
        replies.update(asked)
        if asked and value is not None:
            replies_of[value] = asked
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
    return Reference(frozenset(seen), state, frozenset(replies), optouts, changes_after, replies_of)


def replies_beyond_input(
    replies: list[str], inbound: list[bytes | None], replies_of: dict[bytes, tuple[str, ...]]
) -> int:
    """The reply requests on the replies topic beyond one per copy of their MO on the input topic.

    Every reply id is derived from its MO's id, so an MO the input holds twice asks for its reply
    twice; that is the input's duplicate, which send services drop by ``reply_id``. What exactly-once
    promises is that no copy comes from the classifier itself: this is 0 under exactly-once."""
    asked: Counter[str] = Counter()
    for value in inbound:
        if value is not None:
            asked.update(replies_of.get(value, ()))
    return sum(max(0, got - asked[reply]) for reply, got in Counter(replies).items())
