"""The Postgres layer against a real server: migrations, last-writer-wins, offsets, scope coverage."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import connection, wait_until
from tests.unit.factories import source_of
from worker.classify.scope import block_key, covers
from worker.dev.stack import free_port, with_database
from worker.errors import ConfigError, InputError, RefusedError, ServiceUnavailableError
from worker.events.ordering import latest_per_block
from worker.events.outgoing import derive_id
from worker.model import (
    Action,
    Category,
    ChangeEvent,
    MatchMode,
    MessageCategory,
    Scope,
    ScopeLevel,
    Source,
    Target,
)
from worker.store.migrate import discover, migrate
from worker.store.postgres import ApplyResult, Store

pytestmark = pytest.mark.integration

TOPIC = "blocklist.changes"
GROUP = "optout-projector"
T0 = "2026-11-24T10:00:00.000000Z"
T1 = "2026-11-24T10:00:00.000001Z"
T2 = "2026-11-24T10:05:00.000000Z"

ACCOUNT = Scope(ScopeLevel.ACCOUNT, "acme")
_offsets = itertools.count()


def change(
    action: Action,
    address: str,
    occurred_at: str,
    scope: Scope = ACCOUNT,
    *,
    message_id: str | None = None,
    partition: int = 0,
) -> ChangeEvent:
    """A change event as the projector hands it to :meth:`Store.apply`."""
    message_id = message_id or f"m-{uuid.uuid4().hex[:8]}"
    key = block_key(scope, address)
    event = ChangeEvent(
        event_id=derive_id("change", scope.account_id, message_id, key.decode()),
        action=action,
        scope=scope,
        address=address,
        keyword="STOP" if action is Action.BLOCK else "START",
        rule="stop" if action is Action.BLOCK else "start",
        reason="keyword",
        source=Source("mo.inbound", partition, next(_offsets), message_id),
        occurred_at=occurred_at,
    )
    return event


def block(address: str, at: str, scope: Scope = ACCOUNT, **kw: Any) -> ChangeEvent:
    return change(Action.BLOCK, address, at, scope, **kw)


def unblock(address: str, at: str, scope: Scope = ACCOUNT, **kw: Any) -> ChangeEvent:
    return change(Action.UNBLOCK, address, at, scope, **kw)


_addresses = itertools.count()


def new_address() -> str:
    """Unique within the session, so tests (and hypothesis examples) sharing a database never meet."""
    return f"+1555{next(_addresses):07d}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with await Store.connect(database_url) as opened:
        yield opened


@pytest.fixture
async def empty_database(postgres_url: str) -> AsyncIterator[str]:
    """A database with no schema at all, to watch migrations run from nothing."""
    name = f"optout_e_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(postgres_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def state_rows(store: Store, address: str) -> list[dict[str, Any]]:
    rows = await store.pool.fetch(
        "SELECT level, account_id, subaccount_id, sender, channel, action, active, event_id"
        " FROM blocklist_state WHERE address = $1 ORDER BY level, subaccount_id, sender, channel",
        address,
    )
    return [dict(row) for row in rows]


# --- migrations ---------------------------------------------------------------------------------


async def test_migrate_applies_everything_once(empty_database: str) -> None:
    names = [m.name for m in discover()]
    assert names[0] == "0001_init"
    assert await migrate(empty_database) == names
    assert await migrate(empty_database) == []
    async with connection(empty_database) as conn:
        recorded = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(row["version"], row["name"]) for row in recorded] == [(m.version, m.name) for m in discover()]


async def test_migrate_on_an_already_migrated_database_applies_nothing(database_url: str) -> None:
    assert await migrate(database_url) == []


async def test_concurrent_migrations_apply_each_migration_exactly_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == [m.name for m in discover()]
    async with await Store.connect(empty_database) as store:
        assert await store.pool.fetchval("SELECT count(*) FROM schema_migrations") == len(discover())


async def test_unreachable_server_is_service_unavailable_in_one_line() -> None:
    refused = f"postgresql://optout:s3cret@127.0.0.1:{free_port()}/optout"
    no_socket = "postgresql://optout@/optout?host=/nonexistent-optout-socket-dir"
    for dsn in (refused, no_socket):
        with pytest.raises(ServiceUnavailableError) as migrating:
            await migrate(dsn)
        with pytest.raises(ServiceUnavailableError) as connecting:
            await Store.connect(dsn)
        for message in (str(migrating.value), str(connecting.value)):
            assert "\n" not in message
            assert "s3cret" not in message
            assert message.startswith("Postgres at ")


async def test_missing_database_is_a_config_error(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await Store.connect(with_database(postgres_url, f"optout_missing_{uuid.uuid4().hex[:8]}"))


async def test_a_store_closes_its_pool_when_its_block_ends(database_url: str) -> None:
    async with await Store.connect(database_url) as store:
        assert await store.pool.fetchval("SELECT 1") == 1
        assert not store.pool.is_closing()
    assert store.pool.is_closing()


async def test_a_transaction_whose_client_went_silent_gives_its_locks_back(database_url: str) -> None:
    """A projector SIGKILLed behind a proxy, or on a host that vanished, leaves its session idle in
    a transaction with its row locks: the server ends it after the store's limit, so the next
    projector's write waits that long, not until TCP keepalive notices hours later."""
    key = uuid.uuid4().int & 0x7FFF_FFFF
    async with (
        await Store.connect(database_url, idle_transaction_timeout=0.5) as gone,
        await Store.connect(database_url) as successor,
    ):
        silent = await gone.pool.acquire()
        pid = await silent.fetchval("SELECT pg_backend_pid()")
        await silent.execute("BEGIN")
        await silent.execute("SELECT pg_advisory_xact_lock($1)", key)
        # ... and then nothing more from this client, as from a dead one.
        async with successor.pool.acquire() as conn:
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "30s"
            await asyncio.wait_for(conn.execute("SELECT pg_advisory_xact_lock($1)", key), 30)
            # The server ended that session: its locks go before its entry, so allow it a moment.

            async def session_gone() -> bool:
                return not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

            await wait_until(session_gone, 5, f"the silent session {pid} to leave pg_stat_activity", 0.1)


async def test_a_store_closes_its_pool_when_its_block_raises(database_url: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with await Store.connect(database_url) as store:
            raise RuntimeError("boom")
    assert store.pool.is_closing()


# --- apply: idempotence and last-writer-wins ----------------------------------------------------


async def test_apply_twice_changes_nothing_the_second_time(store: Store) -> None:
    address = new_address()
    sub = Scope(ScopeLevel.SUBACCOUNT, "acme", "s1", channel="sms")
    batch = [block(address, T0), unblock(address, T2), block(address, T1, sub)]
    offsets = {(TOPIC, 0): 3}

    first = await store.apply(GROUP, batch, offsets)
    state = await state_rows(store, address)
    second = await store.apply(GROUP, batch, offsets)

    assert first == ApplyResult(history_inserted=3, state_changed=2)
    assert second == ApplyResult(history_inserted=0, state_changed=0)
    assert await state_rows(store, address) == state
    assert len(await store.history(address)) == 3
    assert await store.load_offsets(GROUP, TOPIC) == {0: 3}


async def test_duplicates_inside_one_batch_are_collapsed(store: Store) -> None:
    address = new_address()
    event = block(address, T0)
    result = await store.apply(GROUP, [event, event, event], {})
    assert result == ApplyResult(history_inserted=1, state_changed=1)
    assert len(await store.history(address)) == 1


@pytest.mark.parametrize("stop_newer", [True, False], ids=["stop-newer", "start-newer"])
@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-arrives-first", "start-arrives-first"])
@pytest.mark.parametrize("together", [True, False], ids=["one-batch", "two-batches"])
async def test_stop_and_start_end_in_the_state_of_the_newer_one(
    store: Store, stop_newer: bool, stop_first: bool, together: bool
) -> None:
    address = new_address()
    stop = block(address, T2 if stop_newer else T0)
    start = unblock(address, T0 if stop_newer else T2)
    arrival = [stop, start] if stop_first else [start, stop]
    batches = [arrival] if together else [[arrival[0]], [arrival[1]]]
    for batch in batches:
        await store.apply(GROUP, batch, {})

    assert bool(await store.check(address, "acme", channel="sms")) is stop_newer
    assert bool(await store.blocks(address)) is stop_newer
    assert len(await store.history(address)) == 2


@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-arrives-first", "start-arrives-first"])
@pytest.mark.parametrize("together", [True, False], ids=["one-batch", "two-batches"])
async def test_on_a_tie_the_block_wins(store: Store, stop_first: bool, together: bool) -> None:
    address = new_address()
    stop, start = block(address, T0), unblock(address, T0)
    arrival = [stop, start] if stop_first else [start, stop]
    for batch in [arrival] if together else [[arrival[0]], [arrival[1]]]:
        await store.apply(GROUP, batch, {})
    [active] = await store.check(address, "acme")
    assert active["event_id"] == stop.event_id


@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-arrives-first", "start-arrives-first"])
async def test_one_microsecond_decides(store: Store, stop_first: bool) -> None:
    address = new_address()
    stop, start = block(address, T0), unblock(address, T1)
    for event in (stop, start) if stop_first else (start, stop):
        await store.apply(GROUP, [event], {})
    assert await store.check(address, "acme") == []


async def test_an_unblock_of_an_unknown_block_leaves_a_tombstone_older_blocks_lose_to(store: Store) -> None:
    address = new_address()
    assert await store.apply(GROUP, [unblock(address, T2)], {}) == ApplyResult(1, 1)
    [tombstone] = await state_rows(store, address)
    assert tombstone["active"] is False
    assert tombstone["action"] == "unblock"

    late = await store.apply(GROUP, [block(address, T0)], {})

    assert late == ApplyResult(history_inserted=1, state_changed=0)
    assert await store.check(address, "acme") == []
    assert [row["action"] for row in await store.history(address)] == ["block", "unblock"]


async def test_concurrent_batches_keep_the_newest_version(database_url: str) -> None:
    """Two projectors writing the same identities at once (a rebalance): SQL, not Python, decides.

    Each batch holds the newer event for half of the addresses and the older one for the other
    half, so whichever transaction commits last, overwriting blindly would leave half of them wrong.
    """
    stores = [await Store.connect(database_url) for _ in range(2)]
    try:
        addresses = [new_address() for _ in range(100)]
        stops = [block(address, T0) for address in addresses]  # older
        starts = [unblock(address, T2) for address in addresses]  # newer
        first = [stops[i] if i % 2 else starts[i] for i in range(len(addresses))]
        second = [starts[i] if i % 2 else stops[i] for i in range(len(addresses))]
        for _ in range(3):
            await asyncio.gather(stores[0].apply(GROUP, first, {}), stores[1].apply(GROUP, second, {}))
            await asyncio.gather(stores[0].apply(GROUP, second, {}), stores[1].apply(GROUP, first, {}))
        assert await stores[0].blocks(addresses[0]) == []
        active = await stores[0].pool.fetchval(
            "SELECT count(*) FROM blocklist_state WHERE address = ANY($1::text[]) AND active", addresses
        )
        assert active == 0
    finally:
        for opened in stores:
            await opened.close()


async def test_a_timestamp_that_is_not_rfc3339_is_rejected_before_anything_is_written(store: Store) -> None:
    address = new_address()
    with pytest.raises(InputError):
        await store.apply(GROUP, [block(address, T0), block(address, "yesterday", message_id="x")], {})
    assert await store.history(address) == []


@st.composite
def arrivals(draw: st.DrawFn) -> list[list[int]]:
    """A permutation of 8 event indexes cut into 1..4 consecutive batches."""
    order = draw(st.permutations(range(8)))
    cuts = sorted(draw(st.sets(st.integers(1, 7), max_size=3)))
    bounds = [0, *cuts, 8]
    return [list(order[a:b]) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=arrivals())
async def test_final_state_does_not_depend_on_arrival_order_or_batching(
    store: Store, plan: list[list[int]]
) -> None:
    address = new_address()  # each example writes its own rows, so examples never see each other
    sender = Scope(ScopeLevel.SENDER, "acme", None, "12345", "sms")
    times = [T0, T0, T1, T2]  # repeated instants, so ties are decided by action rank and event id
    events = [
        (block if i % 2 == 0 else unblock)(address, times[i % 4], ACCOUNT if i < 4 else sender)
        for i in range(8)
    ]
    for batch in plan:
        await store.apply(GROUP, [events[i] for i in batch], {})

    winners = latest_per_block((block_key(e.scope, e.address), e) for e in events)
    expected = sorted(e.event_id for e in winners.values() if e.action is Action.BLOCK)
    assert sorted(b["event_id"] for b in await store.blocks(address)) == expected
    assert {row["event_id"] for row in await state_rows(store, address)} == {
        e.event_id for e in winners.values()
    }


# --- offsets ------------------------------------------------------------------------------------


async def test_offsets_only_move_forward_and_are_kept_per_group_and_topic(store: Store) -> None:
    address = new_address()
    await store.apply(GROUP, [block(address, T0)], {(TOPIC, 0): 10, (TOPIC, 1): 5})
    await store.apply(GROUP, [], {(TOPIC, 0): 7, (TOPIC, 1): 8, (TOPIC, 2): 1})
    await store.apply("other-group", [], {(TOPIC, 0): 99})
    await store.apply(GROUP, [], {("other-topic", 0): 42})

    assert await store.load_offsets(GROUP, TOPIC) == {0: 10, 1: 8, 2: 1}
    assert await store.load_offsets("other-group", TOPIC) == {0: 99}
    assert await store.load_offsets(GROUP, "other-topic") == {0: 42}
    assert await store.load_offsets("never-ran", TOPIC) == {}


async def test_rows_and_offsets_are_stored_together_or_not_at_all(store: Store) -> None:
    address = new_address()
    # A negative offset violates a CHECK in the last statement of the transaction, after the
    # history and state statements ran: all three must roll back.
    with pytest.raises(RefusedError, match="CheckViolationError"):
        await store.apply(GROUP, [block(address, T0)], {(TOPIC, 0): 4, (TOPIC, 1): -1})
    assert await store.history(address) == []
    assert await state_rows(store, address) == []
    assert await store.load_offsets(GROUP, TOPIC) == {}


async def test_a_large_batch_is_applied(store: Store) -> None:
    addresses = [new_address() for _ in range(5000)]
    batch = [block(address, T0) for address in addresses]
    result = await store.apply(GROUP, batch, {(TOPIC, 0): 5000})
    assert result == ApplyResult(5000, 5000)
    assert await store.load_offsets(GROUP, TOPIC) == {0: 5000}


# --- check / blocks / history -------------------------------------------------------------------

SCOPES = (
    Scope(ScopeLevel.ACCOUNT, "acme", channel="*"),
    Scope(ScopeLevel.ACCOUNT, "acme", channel="rcs"),
    Scope(ScopeLevel.SUBACCOUNT, "acme", "s1", channel="*"),
    Scope(ScopeLevel.SUBACCOUNT, "acme", "s2", channel="sms"),
    Scope(ScopeLevel.SENDER, "acme", None, "12345", "*"),
    Scope(ScopeLevel.SENDER, "acme", None, "BANKCO", "whatsapp"),
    Scope(ScopeLevel.ACCOUNT, "globex", channel="sms"),
)


async def _blocked_on_every_scope(store: Store) -> tuple[str, dict[str, Scope]]:
    address = new_address()
    batch = [block(address, T0, scope) for scope in SCOPES]
    batch.append(block(address, T0, Scope(ScopeLevel.SUBACCOUNT, "acme", "lifted", channel="*")))
    batch.append(unblock(address, T1, Scope(ScopeLevel.SUBACCOUNT, "acme", "lifted", channel="*")))
    await store.apply(GROUP, batch, {})
    return address, {event.event_id: event.scope for event in batch}


def _scope_of(row: dict[str, Any]) -> Scope:
    return Scope(
        ScopeLevel(row["level"]), row["account_id"], row["subaccount_id"], row["sender"], row["channel"]
    )


async def test_check_agrees_with_covers_for_every_target(store: Store) -> None:
    address, _ = await _blocked_on_every_scope(store)
    for account, subaccount, sender, channel in itertools.product(
        ("acme", "globex", "initech"),
        (None, "s1", "s2", "lifted"),
        (None, "12345", "BANKCO"),
        (None, "sms", "rcs", "whatsapp", "*"),
    ):
        rows = await store.check(address, account, subaccount, sender, channel)
        # channel=None asks "on any channel": ignore the channel by matching each scope's own.
        expected = {
            scope
            for scope in SCOPES
            if covers(
                scope, Target(account, subaccount, sender, scope.channel if channel is None else channel)
            )
        }
        assert {_scope_of(row) for row in rows} == expected, (account, subaccount, sender, channel)


async def test_check_examples(store: Store) -> None:
    address, _ = await _blocked_on_every_scope(store)

    async def levels(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        rows = await store.check(address, *args, **kwargs)
        return [(row["level"], row["channel"]) for row in rows]

    # Without a subaccount or sender only account-level blocks can apply.
    assert await levels("acme", channel="sms") == [("account", "*")]
    assert await levels("acme") == [("account", "*"), ("account", "rcs")]
    assert await levels("acme", "s2", channel="sms") == [("account", "*"), ("subaccount", "sms")]
    assert await levels("acme", "s2", channel="whatsapp") == [("account", "*")]
    assert await levels("acme", sender="BANKCO", channel="whatsapp") == [
        ("account", "*"),
        ("sender", "whatsapp"),
    ]
    assert await levels("acme", sender="BANKCO", channel="sms") == [("account", "*")]
    assert await levels("acme", "s1", "12345", "rcs") == [
        ("account", "*"),
        ("account", "rcs"),
        ("subaccount", "*"),
        ("sender", "*"),
    ]
    assert await levels("acme", "lifted") == [("account", "*"), ("account", "rcs")]
    assert await levels("initech") == []


async def test_a_marketing_block_stops_marketing_and_lets_transactional_messages_through(
    store: Store,
) -> None:
    address = new_address()
    marketing = dataclasses.replace(block(address, T0), category=Category.MARKETING, event_id="m" * 32)
    await store.apply(GROUP, [marketing], {})
    assert [row["category"] for row in await store.check(address, "acme")] == ["marketing"]
    assert await store.check(address, "acme", category=MessageCategory.TRANSACTIONAL) == []
    # A full STOP on the same scope is a second block: both stand, and it stops transactional too.
    await store.apply(GROUP, [block(address, T1)], {})
    assert [row["category"] for row in await store.check(address, "acme")] == ["all", "marketing"]
    transactional = await store.check(address, "acme", category=MessageCategory.TRANSACTIONAL)
    assert [row["category"] for row in transactional] == ["all"]
    # Lifting the full block leaves the marketing one.
    await store.apply(GROUP, [unblock(address, T2)], {})
    assert [row["category"] for row in await store.check(address, "acme")] == ["marketing"]


async def test_a_change_that_was_not_an_mo_is_stored_with_its_note_and_no_source(store: Store) -> None:
    address = new_address()
    manual = dataclasses.replace(block(address, T0), source=None, reason="manual", note="asked by phone")
    await store.apply(GROUP, [manual], {})
    [row] = await store.check(address, "acme")
    assert (row["reason"], row["note"], row["source_message_id"]) == ("manual", "asked by phone", None)
    [entry] = await store.history(address)
    assert (entry["note"], entry["source_topic"], entry["source_offset"]) == ("asked by phone", None, None)


async def test_check_rows_carry_the_block_details(store: Store) -> None:
    address = new_address()
    event = block(address, T1, Scope(ScopeLevel.SUBACCOUNT, "acme", "s1", channel="sms"))
    await store.apply(GROUP, [event], {})
    [row] = await store.check(address, "acme", "s1", channel="sms")
    assert row == {
        "level": "subaccount",
        "account_id": "acme",
        "subaccount_id": "s1",
        "sender": None,
        "channel": "sms",
        "category": "all",
        "address": address,
        "keyword": "STOP",
        "rule": "stop",
        "reason": "keyword",
        "note": None,
        "occurred_at": T1,
        "event_id": event.event_id,
        "source_message_id": source_of(event).message_id,
    }


async def test_blocks_lists_every_active_block_optionally_of_one_account(store: Store) -> None:
    address, scopes = await _blocked_on_every_scope(store)
    every = await store.blocks(address)
    assert {_scope_of(row) for row in every} == set(SCOPES)
    assert all(scopes[row["event_id"]] == _scope_of(row) for row in every)
    assert {_scope_of(row) for row in await store.blocks(address, "globex")} == {SCOPES[-1]}
    assert await store.blocks(new_address()) == []


def _actions(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["occurred_at"], row["action"]) for row in rows]


async def test_history_is_oldest_first_with_unblock_before_block_on_a_tie(store: Store) -> None:
    address = new_address()
    other = Scope(ScopeLevel.ACCOUNT, "globex")
    events = [
        block(address, T2),
        block(address, T0),
        unblock(address, T0),
        unblock(address, T1),
        block(address, T1, other),
    ]
    await store.apply(GROUP, events[:2], {})
    await store.apply(GROUP, events[2:], {})

    rows = await store.history(address)
    assert _actions(rows) == [(T0, "unblock"), (T0, "block"), (T1, "unblock"), (T1, "block"), (T2, "block")]
    tie = [row for row in rows if row["occurred_at"] == T1]
    assert tie[0]["account_id"] == "acme"
    assert tie[1]["account_id"] == "globex"
    assert _actions(await store.history(address, "globex")) == [(T1, "block")]

    first = events[2]
    assert first.language is None, "an event from a producer older than language/match"
    assert rows[0] == {
        "occurred_at": T0,
        "action": "unblock",
        "level": "account",
        "account_id": "acme",
        "subaccount_id": None,
        "sender": None,
        "channel": "*",
        "category": "all",
        "keyword": "START",
        "rule": "start",
        "language": None,
        "match": None,
        "reason": "keyword",
        "note": None,
        "source_topic": "mo.inbound",
        "source_partition": 0,
        "source_offset": source_of(first).offset,
        "source_message_id": source_of(first).message_id,
        "event_id": first.event_id,
    }


async def test_history_breaks_full_ties_by_event_id(store: Store) -> None:
    address = new_address()
    events = [block(address, T0, Scope(ScopeLevel.SENDER, "acme", None, f"s{i}")) for i in range(6)]
    await store.apply(GROUP, events[::-1], {})
    assert [row["event_id"] for row in await store.history(address)] == sorted(e.event_id for e in events)


async def test_history_keeps_the_language_and_match_mode(store: Store) -> None:
    address = new_address()
    event = replace(block(address, T0), language="fr", match=MatchMode.LEADING)
    await store.apply(GROUP, [event], {})
    (row,) = await store.history(address)
    assert (row["language"], row["match"]) == ("fr", "leading")
