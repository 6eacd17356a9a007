"""worker.events.ordering: last writer wins, whatever the arrival order or duplication."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.factories import change_event
from worker.events.ordering import ACTION_RANK, latest_per_block, version
from worker.model import Action, ChangeEvent, Source

T0 = "2026-11-24T10:00:00.000000Z"
T1 = "2026-11-24T10:00:00.000001Z"
T2 = "2026-11-24T10:00:01.000000Z"
KEY_A = b'["account","acc",null,null,"sms","+1"]'
KEY_B = b'["account","acc",null,null,"sms","+2"]'


def _event(action: Action, occurred_at: str, event_id: str) -> ChangeEvent:
    return change_event(
        "+1",
        action,
        account="acc",
        at=occurred_at,
        event_id=event_id,
        keyword=None,
        rule=None,
        reason="test",
        source=Source("mo.inbound", 0, 0, event_id),
    )


def test_unblock_ranks_below_block() -> None:
    assert ACTION_RANK[Action.UNBLOCK] < ACTION_RANK[Action.BLOCK]
    assert set(ACTION_RANK) == set(Action)


def test_later_event_wins_whatever_its_action() -> None:
    stop = _event(Action.BLOCK, T0, "f" * 32)
    start = _event(Action.UNBLOCK, T1, "0" * 32)
    assert version(start) > version(stop)
    assert latest_per_block([(KEY_A, start), (KEY_A, stop)]) == {KEY_A: start}
    assert latest_per_block([(KEY_A, stop), (KEY_A, start)]) == {KEY_A: start}


def test_block_wins_an_exact_tie() -> None:
    stop = _event(Action.BLOCK, T0, "0" * 32)
    start = _event(Action.UNBLOCK, T0, "f" * 32)
    assert latest_per_block([(KEY_A, stop), (KEY_A, start)]) == {KEY_A: stop}
    assert latest_per_block([(KEY_A, start), (KEY_A, stop)]) == {KEY_A: stop}


def test_event_id_breaks_the_remaining_ties() -> None:
    low = _event(Action.BLOCK, T0, "1" * 32)
    high = _event(Action.BLOCK, T0, "2" * 32)
    assert latest_per_block([(KEY_A, high), (KEY_A, low)])[KEY_A] is high
    assert latest_per_block([(KEY_A, low), (KEY_A, high)])[KEY_A] is high


def test_one_winner_per_key() -> None:
    a_old, a_new = _event(Action.BLOCK, T0, "a" * 32), _event(Action.UNBLOCK, T2, "b" * 32)
    b_only = _event(Action.BLOCK, T1, "c" * 32)
    assert latest_per_block([(KEY_A, a_old), (KEY_B, b_only), (KEY_A, a_new)]) == {
        KEY_A: a_new,
        KEY_B: b_only,
    }
    assert latest_per_block([]) == {}


_KEYS = [KEY_A, KEY_B, b'["sender","acc",null,"12345","*","+1"]']
_TIMES = [T0, T1, T2]


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[tuple[bytes, ChangeEvent]], list[tuple[bytes, ChangeEvent]]]:
    """A set of distinct events (ids are unique, as derived ids are), and a redelivery of it:
    shuffled, with some events repeated."""
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(_KEYS), st.sampled_from(Action), st.sampled_from(_TIMES)),
            min_size=1,
            max_size=12,
        )
    )
    events = [
        (key, dataclasses.replace(_event(action, at, f"{i:032x}"), address=key.decode()))
        for i, (key, action, at) in enumerate(specs)
    ]
    repeats = draw(st.lists(st.sampled_from(events), max_size=8))
    delivered = draw(st.permutations(events + repeats))
    return events, delivered


@given(_histories())
def test_latest_per_block_is_independent_of_order_and_duplication(
    history: tuple[list[tuple[bytes, ChangeEvent]], list[tuple[bytes, ChangeEvent]]],
) -> None:
    events, delivered = history
    assert latest_per_block(delivered) == latest_per_block(events)
    assert latest_per_block(delivered) == latest_per_block(reversed(delivered))


@given(_histories())
def test_the_winner_is_the_greatest_version_per_key(
    history: tuple[list[tuple[bytes, ChangeEvent]], list[tuple[bytes, ChangeEvent]]],
) -> None:
    events, delivered = history
    winners = latest_per_block(delivered)
    assert set(winners) == {key for key, _ in events}
    for key, winner in winners.items():
        assert version(winner) == max(version(ev) for k, ev in events if k == key)


@given(_histories(), st.data())
def test_applying_in_batches_gives_the_same_final_state(
    history: tuple[list[tuple[bytes, ChangeEvent]], list[tuple[bytes, ChangeEvent]]], data: st.DataObject
) -> None:
    """What the projector does: collapse each batch, then keep a stored row only if newer."""
    events, delivered = history
    cut = data.draw(st.integers(0, len(delivered)))
    state: dict[bytes, ChangeEvent] = {}
    for batch in (delivered[:cut], delivered[cut:]):
        for key, event in latest_per_block(batch).items():
            if key not in state or version(event) > version(state[key]):
                state[key] = event
    assert state == latest_per_block(events)
