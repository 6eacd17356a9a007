"""BlocklistView.is_blocked for addresses as a send service has them: canonicalized as the
classifier keys them (worker.sender.view.canonical_lookup over the in-memory index)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.factories import change_event
from worker.events.address import Countries
from worker.model import ScopeLevel
from worker.sender.blockindex import BlockIndex
from worker.sender.view import canonical_lookup


def _index() -> BlockIndex:
    index = BlockIndex()
    index.apply(change_event("+447700900123", channel="*", account="acme"))  # STOPALL on WhatsApp
    index.apply(change_event("+15550000001", channel="whatsapp", account="us", event_id="e2"))
    index.apply(
        change_event(
            "+15550000002",
            level=ScopeLevel.SENDER,
            scope_id="+14155238886",
            account="us",
            channel="*",
            event_id="e3",
        )
    )
    index.apply(change_event("jane@example.com", channel="email", account="acme", event_id="e4"))
    return index


LOOKUP = canonical_lookup(_index().is_blocked, Countries("GB", {"us": "US"}))


@pytest.mark.parametrize(
    ("args", "options", "blocked"),
    [
        (("+447700900123", "acme"), {}, True),
        (("whatsapp:+447700900123", "acme"), {}, True),
        (("07700 900123", "acme"), {"channel": "sms"}, True),  # GB, the default country
        (("+44 7700 900123", "acme"), {"channel": "rcs"}, True),
        (("07700 900123", "other-account"), {}, False),
        # The prefix names the channel: a WhatsApp block, asked about with channel "sms".
        (("whatsapp:+15550000001", "us"), {"channel": "sms"}, True),
        (("+15550000001", "us"), {"channel": "sms"}, False),
        (("(555) 000-0001", "us"), {"channel": "whatsapp"}, True),  # US for account "us"
        # A prefixed sender is the number its block names.
        (("+15550000002", "us"), {"sender": "whatsapp:+14155238886"}, True),
        (("+15550000002", "us"), {"sender": "+1 415 523 8886", "channel": "sms"}, True),
        (("+15550000002", "us"), {"sender": "12345"}, False),
        # Not a phone channel: as written.
        (("jane@example.com", "acme"), {"channel": "email"}, True),
        (("JANE@example.com", "acme"), {"channel": "email"}, False),
        (("garbage", "acme"), {}, False),
    ],
)
def test_either_form_of_an_address(args: tuple[str, str], options: dict[str, Any], blocked: bool) -> None:
    assert LOOKUP(*args, **options) is blocked


def test_without_countries_national_numbers_stay_as_written() -> None:
    lookup = canonical_lookup(_index().is_blocked, Countries())
    assert lookup("whatsapp:+447700900123", "acme")
    assert not lookup("07700 900123", "acme")


def test_a_block_keyed_by_the_written_form_before_canonical_addresses_still_counts() -> None:
    index = BlockIndex()
    index.apply(change_event("whatsapp:+447700900999", channel="sms", account="acme"))  # an old key
    lookup = canonical_lookup(index.is_blocked, Countries())
    assert lookup("whatsapp:+447700900999", "acme", channel="sms")
    assert not lookup("+447700900999", "acme", channel="sms")  # the canonical key has no block


def test_other_keyword_arguments_pass_through() -> None:
    seen: list[tuple[Any, ...]] = []

    def inner(*args: Any, **options: Any) -> bool:
        seen.append((*args, options))
        return False

    canonical_lookup(inner, Countries())("whatsapp:+447700900123", "acme", category="transactional")
    assert seen == [
        ("whatsapp:+447700900123", "acme", None, None, "sms", {"category": "transactional"}),
        ("+447700900123", "acme", None, None, "whatsapp", {"category": "transactional"}),
    ]
