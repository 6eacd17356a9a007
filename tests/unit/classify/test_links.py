"""Opt-out link tokens (worker.classify.links): round trip, tampering, expiry, length."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from worker.classify.links import (
    Link,
    LinkError,
    LinkProblem,
    LinkSecret,
    decode,
    encode,
    make_link,
    parse_ttl,
)
from worker.classify.manual import ManualChangeError
from worker.events.address import Countries
from worker.model import Category, ScopeLevel

SECRET = LinkSecret(b"k" * 32)
OTHER = LinkSecret(b"j" * 32)
NOW = 1_800_000_000
LATER = NOW + 30 * 86400

identifiers = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x7f"),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s)
addresses = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True),
    st.emails(),
    identifiers,
)


@st.composite
def links(draw: st.DrawFn) -> Link:
    level = draw(st.sampled_from(ScopeLevel))
    fields: dict[str, str | None] = {
        "address": draw(addresses),
        "account": draw(identifiers),
        "subaccount": draw(identifiers) if level is ScopeLevel.SUBACCOUNT else None,
        "sender": draw(identifiers) if level is ScopeLevel.SENDER else None,
        "channel": draw(st.one_of(st.none(), st.sampled_from(["sms", "whatsapp", "email"]), identifiers)),
        "category": draw(st.sampled_from(["all", "marketing"])),
    }
    return make_link(fields, draw(st.integers(NOW + 1, 2**32 - 1)))


@given(links())
def test_a_token_decodes_to_the_link_it_was_made_from(link: Link) -> None:
    token = encode(link, SECRET)
    assert decode(token, SECRET, NOW) == link
    assert token.isascii()
    assert "=" not in token
    assert "/" not in token
    assert "+" not in token


@given(links(), st.data())
def test_any_bit_flip_of_the_signed_bytes_is_rejected(link: Link, data: st.DataObject) -> None:
    raw = bytearray(base64.urlsafe_b64decode(encode(link, SECRET) + "=="))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(LinkError) as caught:
        decode(tampered, SECRET, NOW)
    assert caught.value.problem in (LinkProblem.FORGED, LinkProblem.MALFORMED)


@given(links(), st.data())
def test_any_change_of_one_character_of_the_text_is_rejected(link: Link, data: st.DataObject) -> None:
    """Including the last character's unused low bits: one text per token, never four."""
    token = encode(link, SECRET)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.%"))
    assume(char != token[at])
    with pytest.raises(LinkError):
        decode(token[:at] + char + token[at + 1 :], SECRET, NOW)


@given(links())
def test_a_token_signed_with_another_secret_is_forged(link: Link) -> None:
    with pytest.raises(LinkError) as caught:
        decode(encode(link, OTHER), SECRET, NOW)
    assert caught.value.problem is LinkProblem.FORGED


@given(links(), st.integers(-5, 5))
def test_expiry_is_respected_with_an_injected_clock(link: Link, delta: int) -> None:
    token = encode(link, SECRET)
    now = link.expires_at + delta
    if delta < 0:
        assert decode(token, SECRET, now) == link
    else:
        with pytest.raises(LinkError) as caught:
            decode(token, SECRET, now)
        assert caught.value.problem is LinkProblem.EXPIRED


@pytest.mark.parametrize("token", ["", "abc", "a" * 5000, "é" * 40, "AAAA" * 10, "abc def", "x" * 41])
def test_text_that_is_no_token_is_malformed(token: str) -> None:
    with pytest.raises(LinkError) as caught:
        decode(token, SECRET, NOW)
    assert caught.value.problem is LinkProblem.MALFORMED


def test_a_truncated_token_is_malformed_or_forged() -> None:
    token = encode(make_link({"address": "+447700900123", "account": "acme"}, LATER), SECRET)
    for end in range(len(token)):
        with pytest.raises(LinkError):
            decode(token[:end], SECRET, NOW)


def test_the_address_is_canonical_and_the_fields_validated() -> None:
    link = make_link(
        {"address": "whatsapp:+44 7700 900123", "account": "acme", "sender": "ACME"}, LATER, Countries()
    )
    assert (link.change.address, link.change.scope.level, link.change.scope.channel) == (
        "+447700900123",
        ScopeLevel.SENDER,
        "*",
    )
    national = make_link({"address": "07700 900123", "account": "acme"}, LATER, Countries("GB"))
    assert national.change.address == "+447700900123"
    with pytest.raises(ManualChangeError, match="subaccount and sender"):
        make_link({"address": "+447700900123", "account": "a", "subaccount": "s", "sender": "x"}, LATER)
    with pytest.raises(ManualChangeError, match="too long for a link"):
        make_link({"address": "+447700900123", "account": "a" * 256}, LATER)


def test_the_link_id_is_derived_from_the_content() -> None:
    one = make_link({"address": "+447700900123", "account": "acme"}, LATER)
    assert one.link_id == make_link({"address": "+447700900123", "account": "acme"}, LATER).link_id
    assert one.link_id != make_link({"address": "+447700900124", "account": "acme"}, LATER).link_id
    assert one.link_id != make_link({"address": "+447700900123", "account": "acme"}, LATER + 1).link_id
    marketing = make_link({"address": "+447700900123", "account": "acme", "category": "marketing"}, LATER)
    assert marketing.link_id != one.link_id
    assert marketing.change.category is Category.MARKETING


#: The README's length table (Opt-out links): token characters for typical links.
LENGTHS = {
    ("+447700900123", "acme", None, None, None): 47,
    ("+447700900123", "acme", None, "ACME", "sms"): 58,
    ("+14155550123", "acme-marketing-eu", "newsletter", None, "whatsapp"): 90,
    ("someone@example.com", "acme", None, None, "email"): 71,
}


@pytest.mark.parametrize(("fields", "chars"), LENGTHS.items())
def test_token_lengths_are_short_enough_for_an_sms(
    fields: tuple[str, str, str | None, str | None, str | None], chars: int
) -> None:
    address, account, subaccount, sender, channel = fields
    link = make_link(
        {
            "address": address,
            "account": account,
            "subaccount": subaccount,
            "sender": sender,
            "channel": channel,
        },
        LATER,
    )
    assert len(encode(link, SECRET)) == chars


def test_the_secret_is_never_shown_and_must_be_long() -> None:
    secret = LinkSecret(b"s3cr3t-" * 6)
    assert "s3cr3t" not in repr(secret)
    assert "s3cr3t" not in str(secret)
    assert "s3cr3t" not in repr(make_link({"address": "+447700900123", "account": "a"}, LATER))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LinkSecret(b"short")


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2_592_000), ("12h", 43_200), ("90m", 5400), ("1s", 1)])
def test_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "30", "1w", "401d", "-1d", "1.5h"])
def test_bad_ttl(text: str) -> None:
    with pytest.raises(ValueError, match=r"30d|400d"):
        parse_ttl(text)
