"""The three traffic mixes of issue 16: what a short code sees on a quiet day, after a campaign,
and when a campaign goes wrong.

Why three: the classifier's cost per MO depends on the share of keywords (a keyword MO is a
decision plus change and reply events to produce, chat is a decode and a quick rejection), and
so does every peer's. A contender that wins on chat can lose on a STOP storm.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mix:
    name: str
    title: str
    keyword_ratio: float
    shares: dict[str, float] | None
    """Per-intent shares of all records; ``None``: the workload's default keyword weights."""

    @property
    def description(self) -> str:
        if self.shares is None:
            return f"{self.keyword_ratio:.0%} keywords, the default keyword weights"
        parts = ", ".join(f"{_LABELS[intent]} {share:.0%}" for intent, share in self.shares.items())
        return f"{self.keyword_ratio:.0%} keywords: {parts}"


_LABELS = {"opt_out": "STOP-family", "opt_in": "START", "help": "HELP"}

MIXES: dict[str, Mix] = {
    mix.name: mix
    for mix in (
        # `make bench`'s own workload: about 77% of keyword MOs STOP-family, 11% START, 12% HELP.
        Mix("normal", "normal chat", 0.03, None),
        Mix("campaign", "campaign replies", 0.11, {"opt_out": 0.09, "opt_in": 0.01, "help": 0.01}),
        # The issue fixes 60% keywords and 5% START; HELP stays at the campaign's 1%.
        Mix("storm", "STOP storm", 0.60, {"opt_out": 0.54, "opt_in": 0.05, "help": 0.01}),
    )
}
