"""The webhook signature: what the dispatcher signs, a receiver verifies; nothing else passes."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.webhooks.signature import DEFAULT_TOLERANCE, SignatureError, compute, parse, sign, verify

secrets = st.text(min_size=16, max_size=64)
bodies = st.binary(max_size=2048)
times = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


@given(secrets, bodies, times, st.integers(-DEFAULT_TOLERANCE, DEFAULT_TOLERANCE))
def test_a_signed_body_verifies_within_the_window(secret: str, body: bytes, t: int, skew: int) -> None:
    header = sign(secret, body, t)
    assert verify(secret, body, header, now=t + skew) == t


@given(secrets, bodies, times, st.integers(DEFAULT_TOLERANCE + 1, 10**8), st.booleans())
def test_a_replay_outside_the_window_is_refused(
    secret: str, body: bytes, t: int, late: int, early: bool
) -> None:
    header = sign(secret, body, t)
    with pytest.raises(SignatureError, match="outside the tolerance"):
        verify(secret, body, header, now=t - late if early else t + late)


@given(secrets, bodies, times, st.data())
def test_a_tampered_body_is_refused(secret: str, body: bytes, t: int, data: st.DataObject) -> None:
    tampered = data.draw(bodies.filter(lambda other: other != body), label="tampered")
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, tampered, sign(secret, body, t), now=t)


@given(secrets, secrets, bodies, times)
def test_another_secret_is_refused(secret: str, other: str, body: bytes, t: int) -> None:
    if other == secret:
        return
    with pytest.raises(SignatureError, match="does not match"):
        verify(other, body, sign(secret, body, t), now=t)


@given(secrets, bodies, times, st.integers(1, 100))
def test_a_moved_timestamp_breaks_the_signature(secret: str, body: bytes, t: int, shift: int) -> None:
    """The time is signed: moving it into the window (to replay an old request) does not verify."""
    _, [signature] = parse(sign(secret, body, t))
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, body, f"t={t + shift},v1={signature}", now=t + shift)


def test_the_header_is_stripe_style_hmac_sha256_of_t_dot_body() -> None:
    body = b'{"event_id":"e1"}'
    expected = hmac.new(b"whsec_0123456789abcdef", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_0123456789abcdef", body, 1700000000) == f"t=1700000000,v1={expected}"
    assert compute(b"whsec_0123456789abcdef", 1700000000, body) == expected


def test_any_of_several_v1_signatures_may_match_while_secrets_rotate() -> None:
    body = b"{}"
    good = compute("new-secret-0123456789", 1700000000, body)
    header = f"t=1700000000,v1={'0' * 64},v1={good}"
    assert verify("new-secret-0123456789", body, header, now=1700000000) == 1700000000


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "no timestamp"),
        ("v1=abc", "no timestamp"),
        ("t=abc,v1=abc", "no timestamp"),
        ("t=-5,v1=abc", "no timestamp"),
        ("t=1700000000", "no v1 signature"),
        ("t=1700000000,v0=abc", "no v1 signature"),
        ("t=1700000000,v1=é", "does not match"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify("secret-0123456789abc", b"{}", header, now=1700000000)
