"""The API's pure parts: token text, hashing and comparison; the cursor; the rate limiter."""

from __future__ import annotations

import base64
import re
import string

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.api.cursor import CursorError, decode_cursor, encode_cursor
from worker.api.ratelimit import RateLimiter, retry_after
from worker.api.tokens import TokenText, matches, new_token, parse_token, secret_hash, valid_id


def test_a_new_token_parses_back_to_its_id_and_secret() -> None:
    token = new_token()
    text = str(token)
    assert text.startswith(f"opt_{token.token_id}_")
    assert parse_token(text) == token
    assert parse_token(f"  {text}\n") == token
    assert valid_id(token.token_id)
    assert len(token.secret) >= 43  # 256 bits of URL-safe base64


def test_two_tokens_differ() -> None:
    assert len({str(new_token()) for _ in range(50)}) == 50


def test_the_secret_is_never_in_a_repr() -> None:
    token = new_token()
    assert token.secret not in repr(token)
    assert token.token_id in repr(token)


def test_a_secret_with_underscores_and_dashes_parses() -> None:
    text = "opt_0123456789abcdef_ab_cd-ef_gh-ij_kl_mn_op_qr_st_uv_wx"
    assert parse_token(text) == TokenText("0123456789abcdef", "ab_cd-ef_gh-ij_kl_mn_op_qr_st_uv_wx")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "opt_",
        "opt_0123456789abcdef",
        "opt_0123456789abcdef_",
        "opt_0123456789ABCDEF_abcdefghijklmnopqrstuvwxyz",  # the id is lower-case hex
        "opt_0123456789abcde_abcdefghijklmnopqrstuvwxyz",  # 15 digits
        "tok_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
        "opt_0123456789abcdef_short",
        "opt_0123456789abcdef_abcdefghij klmnopqrstuvwxyz",
        "Bearer opt_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_what_is_not_a_token_is_refused(text: str) -> None:
    assert parse_token(text) is None


def test_the_hash_is_sha256_of_the_secret_and_matches_only_it() -> None:
    token = new_token()
    stored = secret_hash(token.secret)
    assert len(stored) == 32
    assert stored != token.secret.encode()
    assert matches(token.secret, stored)
    assert not matches(token.secret + "x", stored)
    assert not matches(new_token().secret, stored)


@given(st.tuples(*[st.text(max_size=40)] * 6))
def test_a_cursor_decodes_to_the_key_it_was_made_of(key: tuple[str, str, str, str, str, str]) -> None:
    cursor = encode_cursor(key)
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")  # URL-safe, unpadded
    assert decode_cursor(cursor) == key


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(orjson.dumps([2, "a", "b", "c", "d", "e", "f"])).decode(),  # version
        base64.urlsafe_b64encode(orjson.dumps([1, "a", "b", "c", "d", "e", 6])).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"address": "+1"})).decode(),
        "A" * 5000,
    ],
)
def test_a_cursor_we_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_burst_passes_then_the_rate_applies() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("t1") for _ in range(3)] == [None, None, None]
    wait = limiter.allow("t1")
    assert wait is not None
    assert wait == pytest.approx(0.5)
    assert retry_after(wait) == "1"
    clock.now += 0.5  # one request's worth refilled
    assert limiter.allow("t1") is None
    assert limiter.allow("t1") == pytest.approx(0.5)


def test_tokens_have_their_own_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.allow("a") is None
    assert limiter.allow("a") is not None
    assert limiter.allow("b") is None


def test_a_bucket_refills_to_the_burst_and_no_more() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=5, clock=clock)
    limiter.allow("t")
    clock.now += 3600
    assert [limiter.allow("t") for _ in range(5)] == [None] * 5
    assert limiter.allow("t") is not None


def test_a_refused_request_does_not_spend_a_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.allow("t") is None
    for _ in range(10):
        assert limiter.allow("t") is not None
    clock.now += 1.0
    assert limiter.allow("t") is None


def test_idle_buckets_are_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    limiter.allow("old")
    clock.now += RateLimiter.IDLE_SECONDS + 1
    limiter.allow("new")
    assert set(limiter._buckets) == {"new"}


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (30.0, "30")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert retry_after(wait) == header


def test_a_limiter_needs_a_positive_rate_and_burst() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(rate=1, burst=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, None, "n"), "--account"),
        ((None, "  ", "n"), "--account"),
        ((None, "acme", None), "--name"),
        ((None, "acme\x00", "n"), "--account contains the control character"),
        ((None, "acme", "x" * 101), "--name: at most 100"),
        (("0123456789abcdef", "acme", "n"), "takes no ID"),
    ],
)
def test_token_create_refuses_bad_arguments_with_one_line(args: tuple[str | None, ...], message: str) -> None:
    from worker.api.admin import _create_args
    from worker.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        _create_args(*args)


def test_token_create_takes_the_account_as_block_does() -> None:
    from worker.api.admin import _create_args

    assert _create_args(None, " acme ", " billing ") == ("acme", "billing")
