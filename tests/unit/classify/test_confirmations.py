"""One confirmation per opt-out: the rule (worker.classify.confirmations) and the batch step using it."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.factories import FakeRecord, inbound_json
from worker.classify.confirmations import (
    Known,
    RecentChanges,
    known_change,
    merged,
)
from worker.classify.rules import default_rulebook
from worker.model import Intent
from worker.stream.batch import BatchOutput, classify_records

KEY = b'["account","acme",null,null,"sms","+15550000001"]'
T0 = 0
SECOND = 1000
"""Test times are milliseconds after 2026-11-24T12:00:00Z."""


def known(ms: int, blocked: bool, eid: str, mo: bool) -> Known:
    seconds, millis = divmod(ms, 1000)
    return (f"2026-11-24T12:{seconds // 60:02d}:{seconds % 60:02d}.{millis:03d}000Z", int(blocked), eid, mo)


def block(at: int, eid: str = "a", mo: bool = True) -> Known:
    return known(at, True, eid, mo)


def unblock(at: int, eid: str = "u") -> Known:
    return known(at, False, eid, False)


def own(at: int, eid: str = "own") -> Known:
    return known(at, True, eid, True)


# -- the rule ------------------------------------------------------------------------------------


def test_nothing_known_is_confirmed() -> None:
    assert not RecentChanges(60).repeated(KEY, own(T0), {})


def test_a_recent_block_by_a_subscriber_is_not_confirmed_again() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0))
    assert recent.repeated(KEY, own(T0 + 59 * SECOND), {})
    assert recent.repeated(KEY, own(T0 + 60 * SECOND), {})  # the window's end included


def test_after_the_window_a_stop_is_confirmed_again() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0))
    assert not recent.repeated(KEY, own(T0 + 61 * SECOND), {})


def test_a_lifted_block_is_confirmed_again() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0))
    recent.apply(KEY, unblock(T0 + SECOND))
    assert not recent.repeated(KEY, own(T0 + 2 * SECOND), {})


def test_a_manual_block_was_never_confirmed_so_the_subscribers_stop_is() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0, mo=False))
    assert not recent.repeated(KEY, own(T0 + SECOND), {})


def test_another_block_identity_does_not_count() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0))
    other = KEY.replace(b'"sms"', b'"*"')
    assert not recent.repeated(other, own(T0 + SECOND), {})


def test_reprocessing_skips_the_messages_own_event_and_looks_at_the_one_before() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, block(T0 + SECOND, "own"))  # the first run's output, seen by the tail
    assert not recent.repeated(KEY, own(T0 + SECOND), {})  # the first STOP: confirmed again, same reply id
    recent.apply(KEY, block(T0, "first"))
    assert recent.repeated(KEY, own(T0 + SECOND), {})  # a second STOP: still not confirmed


def test_a_late_stop_after_a_newer_change_is_not_confirmed() -> None:
    recent = RecentChanges(60)
    recent.apply(KEY, unblock(T0 + 5 * SECOND))  # the START that lifted it came first
    assert recent.repeated(KEY, own(T0), {})


def test_the_batchs_pending_changes_count_with_the_map() -> None:
    recent = RecentChanges(60)
    pending = {KEY: merged(None, block(T0))}
    assert recent.repeated(KEY, own(T0 + SECOND), pending)
    recent.apply(KEY, unblock(T0 + SECOND // 2))  # known from the tail: lifted in between
    assert not recent.repeated(KEY, own(T0 + SECOND), pending)


def test_merge_keeps_the_latest_two_versions_in_any_order() -> None:
    changes = [block(T0, "a"), unblock(T0 + 1), block(T0 + 2, "b"), block(T0 + 3, "c")]
    for order in itertools.permutations(changes):
        entry = None
        for change in order:
            entry = merged(entry, change)
        assert entry == (changes[3], changes[2])
    assert merged((changes[0], None), changes[0]) == (changes[0], None)  # the same change twice


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans(), st.sampled_from("abc")), max_size=8))
def test_the_decision_does_not_depend_on_arrival_order(events: list[tuple[int, bool, str]]) -> None:
    """Tail and batch may learn of the same changes in any order: the answer is the same."""
    mine = own(T0 + 50 * SECOND)
    answers = set()
    for order in (events, list(reversed(events))):
        recent = RecentChanges(30)
        for at, blocked, eid in order:
            recent.apply(KEY, known(T0 + at * SECOND, blocked, eid, blocked))
        answers.add(recent.repeated(KEY, mine, {}))
    assert len(answers) == 1


def test_pruning_forgets_identities_older_than_two_windows_of_the_newest_change() -> None:
    recent = RecentChanges(10)
    recent.apply(b"old", block(T0))
    recent.apply(b"mid", block(T0 + 15 * SECOND))
    recent.apply(b"new", block(T0 + 25 * SECOND))
    recent.prune()
    assert (recent.get(b"old"), recent.get(b"mid") is not None, recent.get(b"new") is not None) == (
        None,
        True,
        True,
    )


def test_known_change_reads_what_the_rule_needs_and_refuses_the_rest() -> None:
    doc = {"action": "block", "occurred_at": "2026-11-24T12:00:00.000000Z", "event_id": "abc", "source": {}}
    change = known_change(orjson.dumps(doc))
    assert change == known(T0, True, "abc", True)
    assert known_change(orjson.dumps(doc | {"source": None})) == known(T0, True, "abc", False)
    assert known_change(orjson.dumps(doc | {"action": "unblock"})) == known(T0, False, "abc", False)
    for bad in (
        None,
        b"",
        b"{",
        b"[]",
        orjson.dumps(doc | {"action": "x"}),
        orjson.dumps(doc | {"occurred_at": 5}),
    ):
        assert known_change(bad) is None
    recent = RecentChanges(60)
    assert not recent.apply_record(KEY, b"{")
    assert not recent.apply_record(None, orjson.dumps(doc))
    assert recent.apply_record(KEY, orjson.dumps(doc))
    assert len(recent) == 1


# -- the batch step ------------------------------------------------------------------------------


def _records(*texts_and_times: tuple[str, str], address: str = "+15550000001") -> list[FakeRecord]:
    return [
        FakeRecord(
            "in", 0, i, 0, None, inbound_json(text, message_id=f"m{i}", address=address, received_at=at)
        )
        for i, (text, at) in enumerate(texts_and_times)
    ]


def _batch(records: list[FakeRecord], recent: RecentChanges | None) -> BatchOutput:
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="t")
    classify_records(records, default_rulebook(), out, recent)
    return out


def _replied(out: BatchOutput) -> list[str]:
    return [orjson.loads(v)["in_reply_to"] for _, v in out.replies]


def test_two_stops_in_one_batch_one_reply_two_changes() -> None:
    out = _batch(
        _records(("STOP", "2026-11-24T12:00:00Z"), ("stop", "2026-11-24T12:00:05Z")), RecentChanges(60)
    )
    assert _replied(out) == ["m0"]
    assert len(out.changes) == 2
    assert out.suppressed == {Intent.OPT_OUT: 1}


def test_without_a_window_every_stop_is_confirmed() -> None:
    out = _batch(_records(("STOP", "2026-11-24T12:00:00Z"), ("stop", "2026-11-24T12:00:05Z")), None)
    assert _replied(out) == ["m0", "m1"]
    assert out.suppressed == {}
    assert out.recent == {}


def test_stop_start_stop_in_one_batch_confirms_each() -> None:
    out = _batch(
        _records(
            ("STOP", "2026-11-24T12:00:00Z"),
            ("START", "2026-11-24T12:00:01Z"),
            ("STOP", "2026-11-24T12:00:02Z"),
        ),
        RecentChanges(60),
    )
    assert _replied(out) == ["m0", "m1", "m2"]


def test_a_start_of_an_address_that_is_not_blocked_is_confirmed_and_help_always() -> None:
    out = _batch(
        _records(("START", "2026-11-24T12:00:00Z"), ("HELP", "2026-11-24T12:00:01Z")), RecentChanges(60)
    )
    assert _replied(out) == ["m0", "m1"]


def test_a_stop_after_the_window_is_confirmed_again() -> None:
    out = _batch(
        _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:05Z")), RecentChanges(2)
    )
    assert _replied(out) == ["m0", "m1"]


def test_the_next_batch_sees_a_merged_batch_and_not_an_unmerged_one() -> None:
    recent = RecentChanges(60)
    first = _batch(_records(("STOP", "2026-11-24T12:00:00Z")), recent)
    assert _replied(first) == ["m0"]
    second = _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:09Z"))[1:]
    assert _replied(_batch(second, recent)) == ["m1"]  # the first batch was never durable: forgotten
    recent.merge(first.recent)
    assert _replied(_batch(second, recent)) == []


def test_reprocessing_a_batch_whose_output_the_tail_saw_gives_no_new_reply() -> None:
    """At-least-once: a crash after the output was acknowledged, before the commit."""
    records = _records(("STOP", "2026-11-24T12:00:00Z"), ("STOP", "2026-11-24T12:00:05Z"))
    recent = RecentChanges(60)
    first = _batch(records, recent)
    for key, value in first.changes:  # what the tail reads back from the change topic
        recent.apply_record(key, value)
    again = _batch(records, recent)
    assert _replied(first) == ["m0"]
    assert set(_replied(again)) <= set(_replied(first))  # never a second, different reply
    assert [v for _, v in again.changes] == [v for _, v in first.changes]


def test_the_batchs_own_changes_are_noted_as_the_tail_reads_them_back() -> None:
    """A STOP's block always; a START's unblocks only of identities already known (a block to lift)."""
    records = _records(("STOP", "2026-11-24T12:00:00Z"), ("START", "2026-11-24T12:00:01Z"))
    out = _batch(records, RecentChanges(60))
    assert len(out.changes) == 9  # one block; four scopes x two categories lifted
    block_key, block_value = out.changes[0]
    [unblock_value] = [value for key, value in out.changes[1:] if key == block_key]
    assert out.recent == {block_key: (known_change(unblock_value), known_change(block_value))}
