"""The chaos runs' count of reply requests the classifier itself duplicated (tests/chaos/reference.py)."""

from __future__ import annotations

from tests.chaos.reference import compute_reference, replies_beyond_input
from tests.unit.factories import inbound_json

MO = inbound_json("STOP", message_id="m-1", address="+15550000001")
CHAT = inbound_json("see you at 5", message_id="m-2", address="+15550000002")


def test_the_reference_knows_the_reply_each_input_record_asks_for() -> None:
    reference = compute_reference([(0, None, MO), (1, None, CHAT)], "inbound")
    assert list(reference.replies_of) == [MO]
    assert set(reference.replies_of[MO]) == reference.reply_ids
    assert len(reference.reply_ids) == 1


def test_a_reply_the_input_asked_for_twice_is_not_counted_as_the_classifiers_duplicate() -> None:
    replies_of = compute_reference([(0, None, MO)], "inbound").replies_of
    (reply,) = replies_of[MO]
    assert replies_beyond_input([reply, reply], [MO, MO, CHAT], replies_of) == 0
    assert replies_beyond_input([reply], [MO, MO], replies_of) == 0  # one window-suppressed: fine


def test_a_reply_beyond_its_mos_copies_is_counted() -> None:
    replies_of = compute_reference([(0, None, MO)], "inbound").replies_of
    (reply,) = replies_of[MO]
    assert replies_beyond_input([reply, reply], [MO, CHAT, None], replies_of) == 1
    assert replies_beyond_input([reply] * 4, [MO, MO], replies_of) == 2
    assert replies_beyond_input(["not-asked-for"], [MO], replies_of) == 1
