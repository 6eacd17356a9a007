"""``worker/classify/_confirm.c``'s ``confirm`` against its reference, ``confirm_in_python``: the same
answers, replies and map on random sequences of batches, tail records, repeats and reprocessed
events, including what C hands back to Python (tail records, events not in the layout, times not
canonical)."""

from __future__ import annotations

import shutil
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.classify.test_confirmations import _own_event
from worker.classify import confirmations
from worker.classify.confirmations import RecentChanges

KEYS = [
    b'["account","acme",null,null,"sms","+15550000001"]',
    b'["sender","acme",null,"ACME","sms","+1555"]',
    b"k",
]
TIMES = [
    "2026-11-24T12:00:00.000000Z",
    "2026-11-24T12:00:30.000000Z",
    "2026-11-24T12:01:00.000000Z",  # the window (60 s) after the first: its end is included
    "2026-11-24T12:01:01.000000Z",
    "2026-11-24T12:05:00.000000Z",
    "2026-11-24T13:00:30+01:00",  # not canonical: parsed, and decided in Python
    "2026-02-30T12:00:00.000000Z",  # digits in place, no such day: Python's answer (an error) stands
]


#: Times around the window's end only: a repeat exactly one window (60 s) after a block, or 1 µs
#: later, is drawn often enough to tell ``<=`` from ``<``.
EDGE = ["2026-11-24T12:00:00.000000Z", "2026-11-24T12:01:00.000000Z", "2026-11-24T12:01:00.000001Z"]


def _events(times: list[str]) -> list[bytes]:
    """Change events: in the classifier's layout (as its encoder wrote them), each also reordered
    (the same event, parsed instead)."""
    template = orjson.loads(_own_event())
    made = []
    for event_id in ("a" * 32, "b" * 32, "c" * 32):
        for action in ("block", "unblock"):
            for occurred_at in times:
                for source in (template["source"], None):  # None: an operator's or an import's
                    doc = template | {"event_id": event_id, "action": action, "occurred_at": occurred_at}
                    doc["source"] = source
                    made.append(orjson.dumps(doc))
                    made.append(orjson.dumps(dict(reversed(doc.items()))))
    return made


KEY = st.sampled_from(KEYS)


def _ops(events: st.SearchStrategy[bytes], edge: bool = False) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Sequences of tail records, batch starts and keyword MOs. ``edge``: every MO an opt-out with
    a reply, of one or two identities, and longer sequences: repeats, whose answer turns on the
    window's end, are then common."""
    flag = st.just(True) if edge else st.booleans()
    return st.lists(
        st.one_of(
            st.tuples(st.just("tail"), KEY, events),
            st.tuples(st.just("batch"), st.integers(0, 10**6)),
            st.tuples(
                st.just("confirm"),
                flag,
                flag,
                st.lists(st.tuples(KEY, events), min_size=1, max_size=2 if edge else 4),
            ),
        ),
        min_size=6 if edge else 0,
        max_size=30,
    )


def _step(memory: RecentChanges, op: tuple[Any, ...], in_c: bool) -> Any:
    if op[0] == "tail":
        memory.apply_record(op[1], op[2], 1_000)
        return None
    if op[0] == "batch":
        memory.begin_batch(1_764_000_000_000 + op[1])
        return None
    _, opt_out, has_reply, pairs = op
    changes = [(b"other", b"an earlier MO's"), *pairs]
    replies = [(b"other", b"an earlier reply")] + ([(b"acme", b"this one's")] if has_reply else [])
    confirm = memory.confirm if in_c else memory.confirm_in_python
    try:
        answer: Any = confirm(changes, 1, replies, 1, opt_out)
    except ValueError as error:  # the day that does not exist, compared with a block: as Python says
        answer = type(error)
    return answer, replies, changes


def test_the_c_extension_was_built_where_a_compiler_is() -> None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the Python memory is in use, as designed")
    assert confirmations._confirm_in_c is not None, "worker/classify/_confirm.c was not built: reinstall"


def _compare(ops: list[tuple[Any, ...]]) -> None:
    if confirmations._confirm_in_c is None:
        pytest.skip("not built: confirm is confirm_in_python")
    in_c, in_python = RecentChanges(60), RecentChanges(60)
    for op in ops:
        assert _step(in_c, op, True) == _step(in_python, op, False)
        assert in_c._entries == in_python._entries


@settings(max_examples=200)
@given(_ops(st.sampled_from(_events(TIMES))))
def test_c_and_python_confirm_alike(ops: list[tuple[Any, ...]]) -> None:
    _compare(ops)


@settings(max_examples=200)
@given(_ops(st.sampled_from(_events(EDGE)), edge=True))
def test_c_and_python_confirm_alike_at_the_windows_end(ops: list[tuple[Any, ...]]) -> None:
    _compare(ops)


def test_an_opt_out_of_many_identities_is_noted_past_the_stack_arrays() -> None:
    """More changes than the C arrays on the stack hold (16): the heap takes them."""
    in_c, in_python = RecentChanges(60), RecentChanges(60)
    keys = [f"key-{i}".encode() for i in range(40)]
    for memory in (in_c, in_python):
        memory.begin_batch(1_764_000_000_000)
        for key in keys[::2]:
            memory.apply_record(key, _own_event(event_id="a" * 32), 1_000)
    changes = [(key, _own_event(event_id="b" * 32)) for key in keys]
    replies_c, replies_python = [(b"acme", b"reply")], [(b"acme", b"reply")]
    assert in_c.confirm(list(changes), 0, replies_c, 0, True) == in_python.confirm_in_python(
        list(changes), 0, replies_python, 0, True
    )
    assert replies_c == replies_python
    assert in_c._entries == in_python._entries
    assert all(key in in_c for key in keys)


@pytest.mark.parametrize(("later", "dropped"), [("12:01:00", True), ("12:01:00.000001", False)])
@pytest.mark.parametrize("noted", ["tail", "own"], ids=["a tail record", "an own event"])
def test_the_windows_end_is_included_in_c_as_in_python(later: str, dropped: bool, noted: str) -> None:
    """A repeat at exactly the window (60 s) after a subscriber's block gets no reply; a µs later it does."""
    stamp = f"2026-11-24T{later}{'' if '.' in later else '.000000'}Z"
    first = _own_event(event_id="a" * 32, occurred_at="2026-11-24T12:00:00.000000Z")
    answers = []
    for in_c in (True, False):
        memory = RecentChanges(60)
        memory.begin_batch(1_764_000_000_000)
        if noted == "tail":
            memory.apply_record(KEYS[0], first, 1_000)
        else:
            memory.confirm_in_python([(KEYS[0], first)], 0, [], 0, True)
        replies = [(b"acme", b"reply")]
        confirm = memory.confirm if in_c else memory.confirm_in_python
        answers.append(
            (
                confirm([(KEYS[0], _own_event(event_id="b" * 32, occurred_at=stamp))], 0, replies, 0, True),
                replies,
            )
        )
    assert answers[0] == answers[1] == (dropped, [] if dropped else [(b"acme", b"reply")])


@given(st.dictionaries(st.binary(max_size=8), st.integers(0, 100), max_size=50), st.integers(0, 100))
def test_c_forgets_what_the_python_walk_forgets(written: dict[bytes, int], horizon: int) -> None:
    if confirmations._forget_older is None:
        pytest.skip("not built: prune walks the map in Python")
    entries: dict[bytes, Any] = {key: (("t", 1, "id", True), None, at) for key, at in written.items()}
    expected = {key: entry for key, entry in entries.items() if entry[2] >= horizon}
    assert confirmations._forget_older(entries, horizon) == len(written) - len(expected)
    assert entries == expected
