"""worker.events.address: one subscriber, one identity, whichever way a gateway writes the number."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.events.address import (
    PHONE_CHANNELS,
    PREFIXES,
    Address,
    Countries,
    Parties,
    already_canonical,
    canonical_address,
    canonical_parties,
    canonical_sender,
    is_e164,
    metric_channel,
)

_CHANNELS = st.sampled_from([*sorted(PHONE_CHANNELS), "email", "messenger", "telegram", "x"])
_COUNTRIES = st.sampled_from([None, "GB", "US", "DE", "FR", "IN", "BR"])
_E164 = st.from_regex(r"\+[0-9]{8,15}", fullmatch=True)
#: Anything a producer may send as an address: number-like text, prefixes, Unicode, garbage.
_ANY = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="+0123456789 -().:tTelwhatsapWHATSAPsmr", max_size=30),
    st.builds(lambda p, rest: p + rest, st.sampled_from([f"{p}:" for p in PREFIXES] + ["WhatsApp:"]),
              st.text(alphabet="+0123456789 -.", max_size=20)),
)  # fmt: skip


@given(_ANY, _CHANNELS, _COUNTRIES)
@settings(max_examples=600, deadline=None)
@example("whatsapp:+44 7700 900123", "sms", None)
@example("07700 900123", "sms", "GB")
@example("+2901234", "sms", None)
@example("tel:", "sms", "GB")
@example("whatsapp:", "whatsapp", None)
def test_never_raises_and_is_idempotent(address: str, channel: str, country: str | None) -> None:
    once = canonical_address(address, channel, country)
    assert isinstance(once, Address)
    twice = canonical_address(once.address, once.channel, country)
    assert twice == once
    if once.canonical:
        assert once.channel in PHONE_CHANNELS
        assert once.address[0] == "+"
        assert once.address[1:].isdigit()
        assert once.address.isascii()
    else:  # garbage in: unchanged (the prefix may still name the channel), flagged
        assert once.address == address


@given(_E164, _CHANNELS, _COUNTRIES)
def test_e164_is_returned_unchanged_on_every_channel(address: str, channel: str, country: str | None) -> None:
    assert canonical_address(address, channel, country) == Address(
        address, channel, channel in PHONE_CHANNELS
    )


def test_the_fast_path_does_not_load_phonenumbers() -> None:
    code = (
        "import sys\n"
        "from worker.events.address import canonical_address, canonical_parties\n"
        "assert canonical_address('+447700900123', 'sms', 'GB').canonical\n"
        "assert canonical_parties('+447700900123', '12345', 'whatsapp', 'GB').canonical\n"
        "assert 'phonenumbers' not in sys.modules\n"
        "assert canonical_address('07700 900123', 'sms', 'GB').address == '+447700900123'\n"
        "assert 'phonenumbers' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(_E164, st.sampled_from(sorted(PREFIXES)), st.sampled_from(["", " "]), _CHANNELS)
def test_prefixes_are_stripped_and_name_the_channel(e164: str, prefix: str, space: str, channel: str) -> None:
    for written in (prefix, prefix.upper(), prefix.capitalize()):
        found = canonical_address(f"{written}:{space}{e164}", channel)
        named = PREFIXES[prefix]
        if named is None and channel not in PHONE_CHANNELS:  # tel: on an email channel: as written
            assert found == Address(f"{written}:{space}{e164}", channel, False)
        else:
            assert found == Address(e164, named or channel, True)


@pytest.mark.parametrize(
    ("written", "channel", "country", "expected"),
    [
        ("07700 900123", "sms", "GB", Address("+447700900123", "sms", True)),
        ("07700900123", "whatsapp", "GB", Address("+447700900123", "whatsapp", True)),
        ("whatsapp:07700 900123", "sms", "GB", Address("+447700900123", "whatsapp", True)),
        ("0044 7700 900123", "sms", "GB", Address("+447700900123", "sms", True)),
        ("+44 (0)7700 900123", "sms", None, Address("+447700900123", "sms", True)),
        ("+44 7700-900-123", "rcs", "US", Address("+447700900123", "rcs", True)),
        ("(202) 555-0199", "sms", "US", Address("+12025550199", "sms", True)),
        ("06 12345678", "sms", "NL", Address("+31612345678", "sms", True)),
        ("tel:+1-202-555-0199", "voice", None, Address("+12025550199", "voice", True)),
        # A national number needs the account's country; without one it stays as written.
        ("07700 900123", "sms", None, Address("07700 900123", "sms", False)),
        # Too short for its country (a short code as a subscriber?): not a number, as written.
        ("12345", "sms", "GB", Address("12345", "sms", False)),
        # Not phone numbers: as written, flagged.
        ("jane@example.com", "email", "GB", Address("jane@example.com", "email", False)),
        ("messenger:2519384756", "messenger", None, Address("messenger:2519384756", "messenger", False)),
        ("+447700900123", "email", "GB", Address("+447700900123", "email", False)),
        ("not a number", "sms", "GB", Address("not a number", "sms", False)),
        ("whatsapp:nonsense", "sms", "GB", Address("whatsapp:nonsense", "whatsapp", False)),
        ("", "sms", "GB", Address("", "sms", False)),
    ],
)
def test_examples(written: str, channel: str, country: str | None, expected: Address) -> None:
    assert canonical_address(written, channel, country) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("12345", ("12345", None)),
        ("ACME", ("ACME", None)),
        ("+14155238886", ("+14155238886", None)),
        ("whatsapp:+14155238886", ("+14155238886", "whatsapp")),
        ("WhatsApp:+1 415 523 8886", ("+14155238886", "whatsapp")),
        ("+1 (415) 523-8886", ("+14155238886", None)),
        ("sms:12345", ("12345", "sms")),
        ("tel:+14155238886", ("+14155238886", None)),
        ("messenger:acme-page", ("messenger:acme-page", None)),
        ("07700 900123", ("07700 900123", None)),  # no default country for senders
    ],
)
def test_senders_lose_their_prefix_short_codes_and_ids_stay(
    written: str, expected: tuple[str, str | None]
) -> None:
    assert canonical_sender(written) == expected


@given(_ANY)
def test_canonical_sender_never_raises_and_is_idempotent(sender: str) -> None:
    once, _ = canonical_sender(sender)
    assert canonical_sender(once)[0] == once


def test_parties_the_subscribers_prefix_names_the_channel_else_the_senders() -> None:
    both = canonical_parties("whatsapp:+447700900123", "whatsapp:+14155238886", "sms")
    assert (both.address, both.sender, both.channel, both.canonical) == (
        "+447700900123", "+14155238886", "whatsapp", True,
    )  # fmt: skip
    only_sender = canonical_parties("07700 900123", "rcs:ACME", "sms", "GB")
    assert (only_sender.address, only_sender.sender, only_sender.channel) == ("+447700900123", "ACME", "rcs")


def test_is_e164() -> None:
    assert is_e164("+447700900123")
    assert is_e164("+12345678")
    assert not is_e164("+1234567")  # 7 digits: shorter than the fast path takes
    assert not is_e164("+1234567890123456")  # 16 digits
    assert not is_e164("447700900123")
    assert not is_e164("+44 7700 900123")
    assert not is_e164("+４４７７００９００１２３")  # full-width digits are digits, not ASCII


def test_countries_per_account_then_default() -> None:
    countries = Countries("GB", {"acme-us": "US"})
    assert countries.of("acme-us") == "US"
    assert countries.of("acme") == "GB"
    assert Countries().of("acme") is None


def test_metric_channel_is_bounded() -> None:
    assert metric_channel("whatsapp") == "whatsapp"
    assert metric_channel("email") == "other"
    assert metric_channel("x" * 200) == "other"


_SENDERS = st.sampled_from(["12345", "ACME", "+14155238886", "+1 415 523 8886", "sms:12345", "x:y"])


@given(_ANY | _E164, _SENDERS, _CHANNELS)
def test_already_canonical_means_canonical_parties_changes_nothing(
    address: str, sender: str, channel: str
) -> None:
    if already_canonical(address, sender, channel):
        assert canonical_parties(address, sender, channel, "GB") == Parties(address, sender, channel, True)
