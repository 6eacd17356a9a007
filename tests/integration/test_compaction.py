"""Log compaction for real (Apache Kafka's log cleaner; Tansu keeps no segments and never compacts).

The change topic is compacted by key (the block identity), so once the cleaner has run it holds
only each identity's last record. Replaying it from the beginning must still rebuild exactly what
Postgres holds: a projector into a fresh database and a ``BlocklistView`` with no snapshot.

This holds because the classifier produces a key's changes in last-writer-wins order. Compaction
keeps the last record by *offset*, not by ``occurred_at``: a change produced after a newer one for
the same identity (a late, reprocessed MO) would be kept over it, and a replay would differ from
Postgres. The records here are produced in LWW order, as the brief for this test says.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.helpers import (
    change,
    change_records,
    cloned_database,
    connection,
    produce,
    read_topic,
    settings_for,
)
from tests.integration.test_sender import postgres_blocks, view_blocks
from worker.classify.scope import change_key
from worker.events.ordering import latest_per_block
from worker.model import ChangeEvent
from worker.sender.view import BlocklistView
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.broker("kafka", reason="Tansu keeps no log segments and has no log cleaner"),
]

#: Segments roll after 200 ms (on the next record), and any dirty fraction is worth cleaning.
COMPACT_FAST = {
    "cleanup.policy": "compact",
    "segment.ms": "200",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "100",
    "min.compaction.lag.ms": "0",
}

_STATE = """
SELECT address, account_id, level, subaccount_id, sender, channel, action, occurred_at, event_id
FROM blocklist_state ORDER BY 1, 2, 3, 4, 5, 6
"""


@pytest.fixture
async def fresh_database(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    """A second migrated database for the replay (the ``database_url`` fixture is the reference)."""
    async with cloned_database(postgres_url, template_database, "optout_r_") as url:
        yield url


def rounds(rng: random.Random, identities: int, round_no: int) -> list[ChangeEvent]:
    """One change per identity, all at the same (later than every previous round's) time."""
    return [
        change(
            f"+1555300{i:04d}",
            rng.choice(["block", "block", "unblock"]),
            at=f"2026-11-24T13:{round_no // 60:02d}:{round_no % 60:02d}.{i:06d}Z",
            level=("account", "subaccount", "sender")[i % 3],
            scope_id="s1",
        )
        for i in range(identities)
    ]


async def state(database_url: str) -> list[tuple[object, ...]]:
    async with connection(database_url) as conn:
        return [tuple(row) for row in await conn.fetch(_STATE)]


async def test_after_the_log_cleaner_ran_a_replay_equals_postgres(
    broker: str, topics: Topics, group_suffix: str, database_url: str, fresh_database: str
) -> None:
    topics = replace(topics, changes=f"{topics.changes}.compacting")
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topics.changes, 4, 1, topic_configs=COMPACT_FAST)])
    finally:
        await admin.close()
    rng = random.Random(9)
    identities = 120
    produced: list[ChangeEvent] = []
    # Postgres follows the whole, uncompacted stream: the reference.
    settings = settings_for(broker, topics, group_suffix)
    for round_no in range(6):
        events = rounds(rng, identities, round_no)
        produced.extend(events)
        await produce(broker, topics.changes, change_records(events))
    await run_projector(settings, database_url, burst=True)

    # More rounds, each after the segment's time is up, until the cleaner has visibly compacted
    # (every round adds one record per identity; a compacted log keeps about one per identity).
    deadline = time.monotonic() + 90
    round_no = 6
    while True:
        await asyncio.sleep(0.3)
        events = rounds(rng, identities, round_no)
        produced.extend(events)
        await produce(broker, topics.changes, change_records(events))
        round_no += 1
        on_topic = len(await read_topic(broker, topics.changes, idle_ms=400))
        if on_topic < len(produced) // 2:
            break
        assert time.monotonic() < deadline, f"not compacted after 90 s: {on_topic} of {len(produced)} left"
    await run_projector(settings, database_url, burst=True)

    expected = latest_per_block((change_key(e), e) for e in produced)
    reference = await state(database_url)
    assert len(reference) == identities == len(expected)
    assert {(r[0], r[6], r[8]) for r in reference} == {
        (e.address, e.action.value, e.event_id) for e in expected.values()
    }
    unblocked = sum(1 for r in reference if r[6] == "unblock")
    assert 0 < unblocked < identities, "both blocks and unblocks are in the final state"

    # A projector that starts from nothing replays the compacted topic into a fresh database.
    replayer = settings_for(broker, topics, f"{group_suffix}-replay")
    stats = await run_projector(replayer, fresh_database, burst=True)
    assert stats.records < len(produced), "the replay read the compacted log, not every record"
    assert await state(fresh_database) == reference

    # And a send service's view with no snapshot, bootstrapped by the same replay.
    view = await BlocklistView.open(broker, topic=topics.changes, snapshot_dir=None)
    try:
        assert await view.wait_current(30)
        assert view_blocks(view) == await postgres_blocks(database_url)
        assert view.lag().applied < len(produced)
    finally:
        await view.close()
