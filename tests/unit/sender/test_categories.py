"""Block categories in the sender's index: a marketing block stops marketing messages only, a full
block stops every message, and the two are separate identities (in a snapshot and in the tail)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.factories import change_event
from worker.classify.scope import block_key, covers
from worker.events import schemas
from worker.events.ordering import latest_per_block
from worker.model import Action, Category, ChangeEvent, MessageCategory, ScopeLevel, Source, Target
from worker.sender.blockindex import Block, BlockIndex, SnapshotEntryError

MARKETING, TRANSACTIONAL = MessageCategory.MARKETING, MessageCategory.TRANSACTIONAL


def event(
    address: str,
    action: Action,
    category: Category = Category.ALL,
    level: ScopeLevel = ScopeLevel.ACCOUNT,
    *,
    account: str = "acme",
    scope_id: str = "",
    channel: str = "sms",
    at: str = "2026-11-24T12:00:00.000000Z",
    event_id: str = "e1",
) -> ChangeEvent:
    plain = change_event(
        address,
        action,
        level=level,
        account=account,
        scope_id=scope_id,
        channel=channel,
        at=at,
        event_id=event_id,
        source=Source("mo.inbound", 0, 0, "m"),
    )
    return dataclasses.replace(plain, category=category)


def entry_line(e: ChangeEvent, *, legacy: bool = False) -> bytes:
    """A snapshot line as the writer's SQL builds it; ``legacy``: as before categories (none)."""
    doc: dict[str, object] = {
        "address": e.address,
        "account_id": e.scope.account_id,
        "level": e.scope.level.value,
        "subaccount_id": e.scope.subaccount_id,
        "sender": e.scope.sender,
        "channel": e.scope.channel,
        "occurred_at": e.occurred_at,
        "event_id": e.event_id,
    }
    if not legacy:
        doc["category"] = e.category.value
    return orjson.dumps(doc)


def _state(events: list[ChangeEvent]) -> dict[bytes, ChangeEvent]:
    return latest_per_block((block_key(e.scope, e.address, e.category), e) for e in events)


def snapshot_of(events: list[ChangeEvent], legacy: bool = False) -> tuple[list[bytes], list[bytes]]:
    rows = sorted(_state(events).values(), key=lambda e: (len(e.address), e.address))

    def line(e: ChangeEvent) -> bytes:
        return entry_line(e, legacy=legacy and e.category is Category.ALL)

    return (
        [line(e) for e in rows if e.action is Action.BLOCK],
        [line(e) for e in rows if e.action is Action.UNBLOCK],
    )


def model_blocked(events: list[ChangeEvent], address: str, target: Target, category: MessageCategory) -> bool:
    """The rule as stated: every active block covering the target stops a marketing message; only
    full ones stop a transactional message."""
    return any(
        e.action is Action.BLOCK
        and e.address == address
        and covers(e.scope, target)
        and (e.category is Category.ALL or category is MARKETING)
        for e in _state(events).values()
    )


ADDRESSES = ["+1", "+2", "é"]
events_strategy = st.lists(
    st.builds(
        event,
        st.sampled_from(ADDRESSES),
        st.sampled_from(list(Action)),
        st.sampled_from(list(Category)),
        st.sampled_from(list(ScopeLevel)),
        account=st.sampled_from(["acme", "beta"]),
        scope_id=st.sampled_from(["s1", "s2"]),
        channel=st.sampled_from(["sms", "*"]),
        at=st.sampled_from([f"2026-11-24T12:00:0{i}.000000Z" for i in range(3)]),
        event_id=st.sampled_from(["a1", "b2", "c3"]),
    ),
    max_size=40,
)
TARGETS = [
    Target(account, sub, sender, channel)
    for account in ("acme", "beta")
    for sub in (None, "s1")
    for sender in (None, "s2")
    for channel in ("sms", "whatsapp")
]


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.data())
def test_snapshot_plus_tail_equals_the_model_for_both_message_categories(
    events: list[ChangeEvent], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(events)))
    legacy = data.draw(st.booleans())  # full blocks written without a category, as before
    tail = events[cut:]
    index = BlockIndex()
    index.load(*snapshot_of(events[:cut], legacy))
    for e in tail:
        index.apply(e)
    for address in ADDRESSES:
        for t in TARGETS:
            for category in MessageCategory:
                got = index.is_blocked(address, t.account_id, t.subaccount_id, t.sender, t.channel, category)
                assert got == model_blocked(events, address, t, category), (address, t, category)
    # the default is a marketing message: stopped by every block
    assert all(
        index.is_blocked(a, t.account_id, t.subaccount_id, t.sender, t.channel)
        == model_blocked(events, a, t, MARKETING)
        for a in ADDRESSES
        for t in TARGETS
    )
    active = [e for e in _state(events).values() if e.action is Action.BLOCK]
    assert index.blocks == len(active)
    assert sorted((b.address, b.category) for b in index.active_blocks()) == sorted(
        (e.address, e.category.value) for e in active
    )


@pytest.mark.parametrize("via", ["snapshot", "tail"])
def test_a_marketing_block_stops_marketing_and_lets_transactional_through(via: str) -> None:
    stop = event("+1", Action.BLOCK, Category.MARKETING)
    index = BlockIndex()
    if via == "snapshot":
        index.load([entry_line(stop)], [])
    else:
        assert index.apply(stop)
    assert index.is_blocked("+1", "acme")
    assert index.is_blocked("+1", "acme", category=MARKETING)
    assert not index.is_blocked("+1", "acme", category=TRANSACTIONAL)
    assert not index.is_blocked("+1", "acme", None, None, "sms", TRANSACTIONAL)  # positional too
    assert list(index.active_blocks()) == [Block("+1", "acme", "account", "", "sms", "marketing")]


def test_a_full_block_stops_both() -> None:
    index = BlockIndex()
    index.load([entry_line(event("+1", Action.BLOCK))], [])
    assert index.is_blocked("+1", "acme", category=MARKETING)
    assert index.is_blocked("+1", "acme", category=TRANSACTIONAL)


def test_a_marketing_unblock_lifts_the_marketing_block_only() -> None:
    """STOP MARKETING, then STOP, then START MARKETING: the full block stays."""
    index = BlockIndex()
    index.apply(event("+1", Action.BLOCK, Category.MARKETING, at="2026-11-24T12:00:01.000000Z", event_id="m"))
    index.apply(event("+1", Action.BLOCK, Category.ALL, at="2026-11-24T12:00:02.000000Z", event_id="s"))
    assert index.blocks == 2
    assert index.apply(
        event("+1", Action.UNBLOCK, Category.MARKETING, at="2026-11-24T12:00:03.000000Z", event_id="u")
    )
    assert index.blocks == 1
    assert [b.category for b in index.active_blocks()] == ["all"]
    assert index.is_blocked("+1", "acme", category=TRANSACTIONAL)
    # and a START (a full unblock) lifts the rest
    index.apply(event("+1", Action.UNBLOCK, Category.ALL, at="2026-11-24T12:00:04.000000Z", event_id="v"))
    assert not index.is_blocked("+1", "acme", category=MARKETING)
    assert index.blocks == 0


def test_the_marketing_block_of_an_address_with_several_blocks() -> None:
    """The frozenset path: two scopes, one full and one marketing."""
    index = BlockIndex()
    index.load(
        [
            entry_line(event("+1", Action.BLOCK, Category.MARKETING, account="acme")),
            entry_line(event("+1", Action.BLOCK, Category.ALL, account="beta")),
        ],
        [],
    )
    assert index.is_blocked("+1", "acme", category=MARKETING)
    assert not index.is_blocked("+1", "acme", category=TRANSACTIONAL)
    assert index.is_blocked("+1", "beta", category=TRANSACTIONAL)
    assert not index.is_blocked("+1", "gamma")


def test_an_old_marketing_stop_replayed_after_a_newer_start_marketing_in_the_snapshot_loses() -> None:
    stop = event("+1", Action.BLOCK, Category.MARKETING, at="2026-11-24T12:00:05.000000Z", event_id="stop")
    start = event("+1", Action.UNBLOCK, Category.MARKETING, at="2026-11-24T12:00:10.000000Z", event_id="go")
    index = BlockIndex()
    index.load(*snapshot_of([stop, start]))
    assert not index.apply(stop)
    assert not index.is_blocked("+1", "acme")
    # ... while a full STOP of the same time is another identity, and applies
    assert index.apply(dataclasses.replace(stop, category=Category.ALL))
    assert index.is_blocked("+1", "acme", category=TRANSACTIONAL)


def test_entry_lines_round_trip_and_match_the_schema() -> None:
    events = [
        event("+1", Action.BLOCK, Category.MARKETING, ScopeLevel.SENDER, scope_id="12345"),
        event("+1", Action.BLOCK, Category.ALL, ScopeLevel.SENDER, scope_id="12345"),
        event("+2", Action.BLOCK, Category.ALL),
    ]
    validator = schemas.validator(schemas.SNAPSHOT_ENTRY)
    lines = [entry_line(e) for e in events]
    for line in [*lines, entry_line(events[2], legacy=True)]:
        validator.validate(orjson.loads(line))
    index = BlockIndex()
    index.load(lines, [])
    assert sorted(index.active_blocks(), key=lambda b: (b.address, b.category)) == [
        Block("+1", "acme", "sender", "12345", "sms", "all"),
        Block("+1", "acme", "sender", "12345", "sms", "marketing"),
        Block("+2", "acme", "account", "", "sms", "all"),
    ]


def test_a_snapshot_line_without_a_category_is_a_full_block() -> None:
    index = BlockIndex()
    index.load([entry_line(event("+1", Action.BLOCK), legacy=True)], [])
    assert index.is_blocked("+1", "acme", category=TRANSACTIONAL)
    assert [b.category for b in index.active_blocks()] == ["all"]


@pytest.mark.parametrize("category", ["promos", None, 1, ["marketing"]])
def test_an_unknown_category_is_refused(category: object) -> None:
    doc = orjson.loads(entry_line(event("+1", Action.BLOCK)))
    doc["category"] = category
    with pytest.raises(SnapshotEntryError):
        BlockIndex().load([orjson.dumps(doc)], [])
