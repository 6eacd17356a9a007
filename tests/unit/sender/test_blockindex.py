"""The sender's in-memory index against a plain model: the projector's last-writer-wins rule
(worker.events.ordering) and the coverage rule (worker.classify.scope.covers), for any snapshot cut."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.factories import change_event
from worker.classify.scope import block_key, covers
from worker.events import schemas
from worker.events.ordering import latest_per_block, version
from worker.model import Action, ChangeEvent, ScopeLevel, Source, Target
from worker.sender.blockindex import BlockIndex, SnapshotEntryError, address_key, key_address, version_of

SOURCE = Source("mo.inbound", 0, 0, "m")


def event(
    address: str,
    action: Action,
    level: ScopeLevel = ScopeLevel.ACCOUNT,
    *,
    account: str = "acme",
    scope_id: str = "",
    channel: str = "sms",
    at: str = "2026-11-24T12:00:00.000000Z",
    event_id: str = "e1",
) -> ChangeEvent:
    return change_event(
        address,
        action,
        level=level,
        account=account,
        scope_id=scope_id,
        channel=channel,
        at=at,
        event_id=event_id,
        source=SOURCE,
    )


def entry_line(e: ChangeEvent) -> bytes:
    """A snapshot line as the writer's SQL builds it."""
    return orjson.dumps(
        {
            "address": e.address,
            "account_id": e.scope.account_id,
            "level": e.scope.level.value,
            "subaccount_id": e.scope.subaccount_id,
            "sender": e.scope.sender,
            "channel": e.scope.channel,
            "occurred_at": e.occurred_at,
            "event_id": e.event_id,
        }
    )


def snapshot_of(events: list[ChangeEvent]) -> tuple[list[bytes], list[bytes]]:
    state = latest_per_block((block_key(e.scope, e.address), e) for e in events)
    rows = sorted(state.values(), key=lambda e: (len(e.address), e.address))
    return (
        [entry_line(e) for e in rows if e.action is Action.BLOCK],
        [entry_line(e) for e in rows if e.action is Action.UNBLOCK],
    )


def model_blocked(events: list[ChangeEvent], address: str, target: Target) -> bool:
    state = latest_per_block((block_key(e.scope, e.address), e) for e in events)
    return any(
        e.action is Action.BLOCK and e.address == address and covers(e.scope, target) for e in state.values()
    )


ADDRESSES = ["+1", "+2", "+10", "+01", "é", "+1x", "+١"]
events_strategy = st.lists(
    st.builds(
        event,
        st.sampled_from(ADDRESSES),
        st.sampled_from(list(Action)),
        st.sampled_from(list(ScopeLevel)),
        account=st.sampled_from(["acme", "beta"]),
        scope_id=st.sampled_from(["s1", "s2"]),
        channel=st.sampled_from(["sms", "whatsapp", "*"]),
        at=st.sampled_from([f"2026-11-24T12:00:0{i}.000000Z" for i in range(4)]),
        event_id=st.sampled_from(["a1", "b2", "c3"]),
    ),
    max_size=40,
)
TARGETS = [
    Target(account, sub, sender, channel)
    for account in ("acme", "beta")
    for sub in (None, "s1", "s2")
    for sender in (None, "s1", "s2")
    for channel in ("sms", "whatsapp")
]


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.data())
def test_snapshot_plus_tail_equals_the_model(events: list[ChangeEvent], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(events)))
    # A tail may repeat records (a classifier batch reprocessed after a crash).
    replayed = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    tail = events[cut:] + replayed
    index = BlockIndex()
    index.load(*snapshot_of(events[:cut]))
    for e in tail:
        index.apply(e)
    everything = events[:cut] + tail
    for address in ADDRESSES:
        for t in TARGETS:
            assert index.is_blocked(address, t.account_id, t.subaccount_id, t.sender, t.channel) == (
                model_blocked(everything, address, t)
            ), (address, t)
    state = latest_per_block((block_key(e.scope, e.address), e) for e in everything)
    assert index.blocks == sum(e.action is Action.BLOCK for e in state.values())
    assert index.blocks == len(list(index.active_blocks()))


def test_an_old_stop_replayed_after_a_newer_start_in_the_snapshot_loses() -> None:
    """The reason unblocked identities are in the snapshot at all."""
    start = event("+1", Action.UNBLOCK, at="2026-11-24T12:00:10.000000Z", event_id="start")
    stop = event("+1", Action.BLOCK, at="2026-11-24T12:00:05.000000Z", event_id="stop")
    index = BlockIndex()
    index.load(*snapshot_of([stop, start]))
    assert not index.apply(stop)
    assert not index.is_blocked("+1", "acme")


def test_a_block_wins_an_exact_tie_like_postgres() -> None:
    index = BlockIndex()
    index.apply(event("+1", Action.UNBLOCK, event_id="zzz"))
    assert index.apply(event("+1", Action.BLOCK, event_id="aaa"))
    assert index.is_blocked("+1", "acme")


def test_version_packing_keeps_the_order_of_ordering_version() -> None:
    """Exact for ids that differ in their first 8 bytes (ours are 32 random hex digits)."""
    cases = [
        event("+1", action, at=at, event_id=eid)
        for action in Action
        for at in (
            "0999-01-01T00:00:00.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "2026-11-24T12:00:00.000001Z",
        )
        for eid in ("0123456789abcdef", "01234568", "f0", "a", "")
    ]
    by_model = sorted(cases, key=version)
    by_packed = sorted(cases, key=lambda e: version_of(e.occurred_at, e.action is Action.BLOCK, e.event_id))
    assert [version(e) for e in by_model] == [version(e) for e in by_packed]


@pytest.mark.parametrize(
    ("target", "blocked"),
    [
        (("acme", None, None, "sms"), True),
        (("acme", None, None, "whatsapp"), False),
        (("beta", None, None, "sms"), False),
    ],
)
def test_one_account_block(target: tuple[str, str | None, str | None, str], blocked: bool) -> None:
    index = BlockIndex()
    index.load([entry_line(event("+1", Action.BLOCK))], [])
    account, sub, sender, channel = target
    assert index.is_blocked("+1", account, sub, sender, channel) is blocked
    assert not index.is_blocked("+2", account, sub, sender, channel)


def test_writer_lines_match_the_entry_schema() -> None:
    line = entry_line(event("+1", Action.BLOCK, ScopeLevel.SENDER, scope_id="12345"))
    schemas.validator(schemas.SNAPSHOT_ENTRY).validate(orjson.loads(line))


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"{}",
        b'{"address":"+1","account_id":"a","level":"galaxy","subaccount_id":null,"sender":null,'
        b'"channel":"sms","occurred_at":"2026-11-24T12:00:00Z","event_id":"e"}',
        b'{"address":"+1","account_id":"a","level":"sender","subaccount_id":null,"sender":null,'
        b'"channel":"sms","occurred_at":"2026-11-24T12:00:00Z","event_id":"e"}',
        b'{"address":"+1","account_id":"a","level":"account","subaccount_id":null,"sender":null,'
        b'"channel":"sms","occurred_at":"yesterday","event_id":"e"}',
    ],
)
def test_bad_lines_are_refused(line: bytes) -> None:
    with pytest.raises(SnapshotEntryError):
        BlockIndex().load([line], [])


def test_unsorted_lines_are_refused() -> None:
    lines = [entry_line(event("+2", Action.BLOCK)), entry_line(event("+1", Action.BLOCK))]
    with pytest.raises(SnapshotEntryError, match="out of order"):
        BlockIndex().load(lines, [])


def test_unsorted_by_length_is_refused() -> None:
    lines = [entry_line(event("+10", Action.BLOCK)), entry_line(event("+9", Action.BLOCK))]
    with pytest.raises(SnapshotEntryError, match="out of order"):
        BlockIndex().load(lines, [])


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("+15551234567", 15551234567),
        ("+1", 1),
        ("+999999999999999999", 999999999999999999),
        ("+9999999999999999999", "+9999999999999999999"),
        ("+0155", "+0155"),
        ("+", "+"),
        ("+١٥٥", "+١٥٥"),
        ("+1_55", "+1_55"),
        ("+1 55", "+1 55"),
        ("15551234567", "15551234567"),
        ("whatsapp:+1555", "whatsapp:+1555"),
        ("", ""),
    ],
)
def test_only_canonical_numbers_become_integer_keys(address: str, key: int | str) -> None:
    assert address_key(address) == key
    assert type(address_key(address)) is type(key)
    assert key_address(address_key(address)) == address


def test_the_filter_grows_with_live_blocks() -> None:
    index = BlockIndex()
    for n in range(20_000):
        index.apply(event(f"+1{n:07d}", Action.BLOCK, event_id=f"e{n}"))
    assert index.blocks == 20_000
    assert all(index.is_blocked(f"+1{n:07d}", "acme") for n in range(20_000))
    assert not any(index.is_blocked(f"+2{n:07d}", "acme") for n in range(20_000))
