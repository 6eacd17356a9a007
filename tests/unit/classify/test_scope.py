"""worker.classify.scope: the scope an opt-out creates, the scopes an opt-in lifts, and what a block
covers."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.classify.scope import block_key, block_scope, covering_scopes, covers
from worker.constants import ALL_CHANNELS
from worker.model import Scope, ScopeLevel, Target

A, SUB, SND, CH = "acc", "sub", "12345", "sms"


@pytest.mark.parametrize(
    ("level", "all_channels", "sub", "expected"),
    [
        (ScopeLevel.ACCOUNT, False, SUB, Scope(ScopeLevel.ACCOUNT, A, None, None, CH)),
        (ScopeLevel.ACCOUNT, False, None, Scope(ScopeLevel.ACCOUNT, A, None, None, CH)),
        (ScopeLevel.ACCOUNT, True, SUB, Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS)),
        (ScopeLevel.SUBACCOUNT, False, SUB, Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH)),
        (ScopeLevel.SUBACCOUNT, True, SUB, Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, ALL_CHANNELS)),
        # No subaccount on the message: widen to the account (block more, never less).
        (ScopeLevel.SUBACCOUNT, False, None, Scope(ScopeLevel.ACCOUNT, A, None, None, CH)),
        (ScopeLevel.SUBACCOUNT, True, None, Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS)),
        # A sender block names the sender, not the subaccount it came through.
        (ScopeLevel.SENDER, False, SUB, Scope(ScopeLevel.SENDER, A, None, SND, CH)),
        (ScopeLevel.SENDER, False, None, Scope(ScopeLevel.SENDER, A, None, SND, CH)),
        (ScopeLevel.SENDER, True, SUB, Scope(ScopeLevel.SENDER, A, None, SND, ALL_CHANNELS)),
    ],
)
def test_block_scope(level: ScopeLevel, all_channels: bool, sub: str | None, expected: Scope) -> None:
    assert block_scope(level, all_channels, A, sub, SND, CH) == expected


def test_covering_scopes_full_target() -> None:
    scopes = covering_scopes(Target(A, SUB, SND, CH))
    assert set(scopes) == {
        Scope(ScopeLevel.ACCOUNT, A, None, None, CH),
        Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS),
        Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH),
        Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, ALL_CHANNELS),
        Scope(ScopeLevel.SENDER, A, None, SND, CH),
        Scope(ScopeLevel.SENDER, A, None, SND, ALL_CHANNELS),
    }
    assert len(scopes) == len(set(scopes))


def test_covering_scopes_without_subaccount_or_sender() -> None:
    assert set(covering_scopes(Target(A, None, SND, CH))) == {
        Scope(ScopeLevel.ACCOUNT, A, None, None, CH),
        Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS),
        Scope(ScopeLevel.SENDER, A, None, SND, CH),
        Scope(ScopeLevel.SENDER, A, None, SND, ALL_CHANNELS),
    }
    assert set(covering_scopes(Target(A, SUB, None, CH))) == {
        Scope(ScopeLevel.ACCOUNT, A, None, None, CH),
        Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS),
        Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH),
        Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, ALL_CHANNELS),
    }


def test_covering_scopes_of_an_all_channel_target_has_no_duplicates() -> None:
    scopes = covering_scopes(Target(A, SUB, SND, ALL_CHANNELS))
    assert len(scopes) == 3
    assert all(s.channel == ALL_CHANNELS for s in scopes)


@pytest.mark.parametrize(
    ("scope", "target", "expected"),
    [
        (Scope(ScopeLevel.ACCOUNT, A, None, None, CH), Target(A, SUB, SND, CH), True),
        (Scope(ScopeLevel.ACCOUNT, A, None, None, CH), Target(A, None, None, CH), True),
        (Scope(ScopeLevel.ACCOUNT, A, None, None, CH), Target("other", SUB, SND, CH), False),
        (Scope(ScopeLevel.ACCOUNT, A, None, None, CH), Target(A, SUB, SND, "whatsapp"), False),
        (Scope(ScopeLevel.ACCOUNT, A, None, None, ALL_CHANNELS), Target(A, SUB, SND, "whatsapp"), True),
        (Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH), Target(A, SUB, "other", CH), True),
        (Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH), Target(A, "sub2", SND, CH), False),
        (Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH), Target(A, None, SND, CH), False),
        (Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, ALL_CHANNELS), Target(A, SUB, SND, "rcs"), True),
        (Scope(ScopeLevel.SENDER, A, None, SND, CH), Target(A, "any-sub", SND, CH), True),
        (Scope(ScopeLevel.SENDER, A, None, SND, CH), Target(A, None, SND, CH), True),
        (Scope(ScopeLevel.SENDER, A, None, SND, CH), Target(A, SUB, "67890", CH), False),
        (Scope(ScopeLevel.SENDER, A, None, SND, CH), Target("other", SUB, SND, CH), False),
    ],
)
def test_covers(scope: Scope, target: Target, expected: bool) -> None:
    assert covers(scope, target) is expected


_ids = st.sampled_from(["a", "b"])
_opt_ids = st.one_of(st.none(), _ids)
_channels = st.sampled_from(["sms", "whatsapp"])


@given(
    level=st.sampled_from(ScopeLevel),
    all_channels=st.booleans(),
    account=_ids,
    sub=_opt_ids,
    sender=_ids,
    channel=_channels,
    target=st.builds(Target, _ids, _opt_ids, _opt_ids, st.one_of(_channels, st.just(ALL_CHANNELS))),
)
def test_an_opt_in_lifts_exactly_the_blocks_that_cover_the_target(
    level: ScopeLevel,
    all_channels: bool,
    account: str,
    sub: str | None,
    sender: str,
    channel: str,
    target: Target,
) -> None:
    scope = block_scope(level, all_channels, account, sub, sender, channel)
    assert covers(scope, target) == (scope in covering_scopes(target))


@given(st.builds(Target, _ids, _opt_ids, _opt_ids, _channels))
def test_every_covering_scope_covers(target: Target) -> None:
    assert all(covers(scope, target) for scope in covering_scopes(target))


@given(
    level=st.sampled_from(ScopeLevel),
    all_channels=st.booleans(),
    sub=_opt_ids,
    sender=_ids,
    channel=_channels,
)
def test_a_block_covers_the_message_that_created_it(
    level: ScopeLevel, all_channels: bool, sub: str | None, sender: str, channel: str
) -> None:
    scope = block_scope(level, all_channels, A, sub, sender, channel)
    assert covers(scope, Target(A, sub, sender, channel))


def test_block_key_is_the_json_identity() -> None:
    scope = Scope(ScopeLevel.SUBACCOUNT, A, SUB, None, CH)
    key = block_key(scope, "+15550001111")
    assert key == b'["subaccount","acc","sub",null,"sms","+15550001111"]'
    assert orjson.loads(key) == ["subaccount", A, SUB, None, CH, "+15550001111"]


def test_block_keys_differ_per_identity() -> None:
    scopes = covering_scopes(Target(A, SUB, SND, CH))
    keys = {block_key(s, "+1") for s in scopes} | {block_key(s, "+2") for s in scopes}
    assert len(keys) == 2 * len(scopes)


def test_block_key_cannot_be_confused_by_separators() -> None:
    one = block_key(Scope(ScopeLevel.SENDER, "a,b", None, "c", CH), "+1")
    two = block_key(Scope(ScopeLevel.SENDER, "a", None, "b,c", CH), "+1")
    assert one != two
