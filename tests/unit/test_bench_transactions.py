"""bench.transactions' --retry settings: the waits it compares, in seconds, or one line naming the bad one."""

from __future__ import annotations

import argparse

import pytest

from bench.transactions import _retry_settings, parse_args


def test_retry_settings_in_seconds() -> None:
    assert _retry_settings("1:20,5:5") == [(0.001, 0.02), (0.005, 0.005)]
    assert parse_args([]).retry == [(0.001, 0.02), (0.005, 0.005)]  # the default compares these two


@pytest.mark.parametrize("text", ["5", "1:x", "0:20", "20:1", "1:20,"])
def test_retry_settings_refuse_what_is_not_first_most(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="FIRST:MOST"):
        _retry_settings(text)
