"""The dispatcher's pure decisions: retry waits, order per (endpoint, address), what is committed,
which endpoint wants which change, which URLs are accepted, and the dead letter's format."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.factories import change_event
from worker.errors import InputError
from worker.events.outgoing import encode_change
from worker.events.schemas import CHANGE, WEBHOOK_DEAD_LETTER, validator
from worker.model import Category
from worker.webhooks.endpoints import Endpoint, check_categories, check_secret, check_url, new_secret
from worker.webhooks.plan import chains, committable, dead_letter, failure_kind, full_jitter, read_change

CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _endpoint(id: int = 1, account: str = "acme", categories: frozenset[str] = frozenset()) -> Endpoint:
    return Endpoint(
        id, account, "https://hooks.example/optout", "whsec_0123456789abcdef", categories, CREATED
    )


def _raw(
    address: str = "+15550000001",
    *,
    account: str = "acme",
    emitted: str = "2026-11-24T12:00:01.000000Z",
    category: Category = Category.ALL,
) -> bytes:
    event = dataclasses.replace(change_event(address, account=account, event_id="0" * 32), category=category)
    return encode_change(event, emitted)


# Retry waits: full jitter


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_a_wait_is_within_the_doubling_ceiling_capped_at_the_maximum(attempt: int, r: float) -> None:
    wait = full_jitter(attempt, 1.0, 60.0, lambda: r)
    assert 0 <= wait <= min(60.0, 2.0 ** (attempt - 1))


def test_the_ceiling_doubles_per_attempt_until_the_maximum() -> None:
    ceilings = [full_jitter(attempt, 1.0, 60.0, lambda: 1.0) for attempt in range(1, 9)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60]
    assert full_jitter(3, 0.5, 60.0, lambda: 0.25) == 0.5  # a quarter of the 2 s ceiling


# Order: one chain per (endpoint, address), in the batch's order


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.sampled_from("abc"), st.integers()), max_size=60))
def test_chains_keep_the_batch_order_of_each_key_and_lose_nothing(items: list[tuple[int, str, int]]) -> None:
    pairs = [((endpoint, address), index) for index, (endpoint, address, _) in enumerate(items)]
    grouped = chains(pairs)
    assert sorted(i for chain in grouped.values() for i in chain) == list(range(len(items)))
    for key, chain in grouped.items():
        assert chain == [index for k, index in pairs if k == key]  # the order the batch gave


# Commit: the prefix of done records


@given(st.lists(st.booleans(), max_size=30), st.integers(0, 1000))
def test_the_commit_position_stops_at_the_first_record_not_done(done: list[bool], first: int) -> None:
    offsets = [first + i for i in range(len(done))]
    position = committable(offsets, lambda offset: done[offset - first])
    prefix = next((i for i, d in enumerate(done) if not d), len(done))
    assert position == (None if prefix == 0 else first + prefix)


def test_a_batch_with_every_record_done_commits_after_its_last_record() -> None:
    assert committable([7, 8, 12], lambda _: True) == 13  # compaction leaves gaps in offsets


# Which endpoint wants which change


def test_an_endpoint_gets_its_own_accounts_changes_only() -> None:
    change = read_change(_raw(account="acme"))
    assert _endpoint(account="acme").wants(change.account_id, change.category, change.emitted_at)
    other = read_change(_raw(account="globex"))
    assert not _endpoint(account="acme").wants(other.account_id, other.category, other.emitted_at)


def test_a_category_filter_keeps_only_those_blocks() -> None:
    marketing = read_change(_raw(category=Category.MARKETING))
    full = read_change(_raw(category=Category.ALL))
    only = _endpoint(categories=frozenset({"marketing"}))
    assert only.wants(marketing.account_id, marketing.category, marketing.emitted_at)
    assert not only.wants(full.account_id, full.category, full.emitted_at)
    assert _endpoint().wants(full.account_id, full.category, full.emitted_at)  # no filter: every category


def test_changes_emitted_before_the_endpoint_was_added_are_not_sent() -> None:
    before = read_change(_raw(emitted="2026-11-24T11:59:59.999999Z"))
    assert before.emitted_at == CREATED - timedelta(microseconds=1)
    assert not _endpoint().wants(before.account_id, before.category, before.emitted_at)


def test_a_record_that_is_no_change_event_is_an_input_error() -> None:
    with pytest.raises(InputError):
        read_change(b'{"schema": "optout.blocklist-change.v1"}')


def test_the_endpoint_repr_shows_neither_secret_nor_url() -> None:
    shown = repr(_endpoint())
    assert "whsec_" not in shown
    assert "hooks.example" not in shown


# URLs, secrets, categories


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example/optout?token=1",
        "http://127.0.0.1:8080/h",
        "http://localhost/h",
        "http://[::1]:9/",
    ],
)
def test_https_urls_and_local_http_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example/optout", "https:// required"),
        ("http://10.0.0.1/optout", "https:// required"),
        ("ftp://hooks.example/", "expected https://"),
        ("hooks.example/optout", "expected https://"),
        ("https://user:pw@hooks.example/", "no user:password@"),
        ("https://hooks.example:99999/", "not a URL"),
        ("https://hooks.example/#x", "no #fragment"),
        ("https://hooks.example/" + "a" * 3000, "at most"),
    ],
)
def test_other_urls_are_refused_in_one_line_naming_the_flag(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        check_url(url)
    assert str(caught.value).startswith("--url: ")
    assert "\n" not in str(caught.value)
    assert "pw" not in str(caught.value)


def test_secrets_are_long_and_fresh_and_short_ones_refused() -> None:
    assert len(new_secret()) > 40
    assert new_secret() != new_secret()
    assert check_secret("0123456789abcdef") == "0123456789abcdef"
    with pytest.raises(ValueError, match="--secret"):
        check_secret("short")
    with pytest.raises(ValueError, match="--category: transactional is not one of all, marketing"):
        check_categories(["transactional"])


# Dead letters


def test_a_dead_letter_validates_and_carries_the_change_as_sent_but_no_url_or_secret() -> None:
    raw = _raw()
    change = read_change(raw)
    letter = orjson.loads(
        dead_letter(
            change,
            endpoint_id=3,
            attempts=8,
            reason="HTTP 503",
            status=503,
            source=("blocklist.changes", 2, 41),
            failed_at="2026-11-24T12:00:05.000000Z",
            worker_version="0.1.0",
        )
    )
    assert list(validator(WEBHOOK_DEAD_LETTER).iter_errors(letter)) == []
    assert list(validator(CHANGE).iter_errors(letter["change"])) == []
    assert letter["change"] == orjson.loads(raw)
    assert letter["error"] == {"reason": "HTTP 503", "status": 503}
    assert "hooks.example" not in str(letter)
    assert "whsec_" not in str(letter)


@pytest.mark.parametrize(
    ("status", "timed_out", "kind"),
    [(None, True, "timeout"), (None, False, "connection"), (503, False, "http_5xx"), (404, False, "http_4xx"),
     (302, False, "http_3xx"), (999, False, "http_other")],
)  # fmt: skip
def test_failure_kinds_are_few(status: int | None, timed_out: bool, kind: str) -> None:
    assert failure_kind(status, timed_out) == kind


def test_a_batch_with_changes_emitted_since_the_last_load_asks_for_a_reload() -> None:
    from worker.webhooks.endpoints import COMMIT_MARGIN, Loaded

    loaded = Loaded((_endpoint(),), CREATED)
    assert loaded.may_miss(CREATED + timedelta(seconds=5))  # an endpoint added since may want it
    assert loaded.may_miss(CREATED - COMMIT_MARGIN)  # an INSERT committed just after the load
    assert not loaded.may_miss(CREATED - COMMIT_MARGIN - timedelta(microseconds=1))  # a backlog
    assert not loaded.may_miss(None)  # only tombstones and undecodable records
