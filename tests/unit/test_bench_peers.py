"""bench/peers/compare.py's scale-out run: its processes reported as one contender; its workload knobs."""

from __future__ import annotations

import orjson

from bench.peers.compare import _summary, combine
from bench.phases import PhaseConfig, PhaseResult, _workload
from bench.workload import ACCOUNTS, generate


def _process(records: int, window: list[float], cpu: float, rss_kb: int, opt_out: int) -> PhaseResult:
    return PhaseResult(
        "classifier",
        records=records,
        seconds=window[1] - window[0],
        peak_rss_kb=rss_kb,
        batches=records // 1000,
        batch_seconds=[0.01] * (records // 1000),
        extra={"classified": {"none": records - opt_out, "opt_out": opt_out}, "changes": opt_out},
        window=window,
        cpu_seconds=cpu,
    )


def test_processes_sharing_a_group_are_counted_together() -> None:
    first = _process(120_000, [10.0, 12.0], 1.5, 90_000, 100)
    second = _process(80_000, [10.5, 12.5], 1.0, 80_000, 40)
    combined = combine([first, second], 200_000)
    assert combined.error is None
    assert combined.records == 200_000
    assert combined.window == [10.0, 12.5]  # first record either got, last batch either finished
    assert combined.seconds == 2.5
    assert combined.rate == 80_000
    assert combined.cpu_seconds == 2.5
    assert combined.batches == 200
    assert combined.peak_rss_kb == 90_000
    assert combined.extra["classified"] == {"none": 199_860, "opt_out": 140}
    assert combined.extra["changes"] == 140
    assert combined.extra["records_per_process"] == [120_000, 80_000]
    assert combined.extra["peak_rss_mb"] == round(170_000 / 1024, 1)
    assert combined.extra["start_skew_s"] == 0.5
    assert "started 0.50 s apart" in _summary(combined)


def test_a_pair_that_started_together_has_no_skew_note() -> None:
    combined = combine(
        [_process(100_000, [10.0, 10.4], 0.4, 1, 0), _process(100_000, [10.02, 10.4], 0.4, 1, 0)], 200_000
    )
    assert combined.extra["start_skew_s"] == 0.02
    assert _summary(combined) == "500,000 msgs/s, 0.80 CPU-s in 0.40 s"


def test_a_pair_of_which_one_process_got_nothing_says_so() -> None:
    combined = combine(
        [_process(200_000, [10.0, 10.4], 0.8, 1, 0), PhaseResult("classifier", cpu_seconds=0.1)], 200_000
    )
    assert combined.error is None
    assert combined.extra["records_per_process"] == [200_000, 0]
    assert _summary(combined).endswith("(1 of its processes got no records: this is the others' work alone)")


def test_a_short_or_failed_run_is_an_error() -> None:
    short = combine(
        [_process(120_000, [0.0, 1.0], 1.0, 1, 0), _process(70_000, [0.0, 1.0], 1.0, 1, 0)], 200_000
    )
    assert short.error == "the classifier processes stopped after 190000 of 200000 records"
    failed = combine([_process(1, [0.0, 1.0], 0.0, 1, 0), PhaseResult("classifier", error="boom")], 1)
    assert failed.error == "boom"


def test_the_accounts_knob_reaches_the_generated_mos() -> None:
    """``--accounts``: the MOs come from that many accounts (the classifier's per-account caches
    are what it measures), and the default stays the workload's."""
    config = PhaseConfig("", "in", "changes", "replies", "dlq", 3_000, 4, 0.6, 0.0, 7, accounts=500)
    accounts = {orjson.loads(record.value)["account_id"] for record in generate(_workload(config))}
    assert len(accounts) > 36  # more than the default's, from acct-001 to acct-500
    assert accounts <= {f"acct-{n:03d}" for n in range(1, 501)}
    default = PhaseConfig("", "in", "changes", "replies", "dlq", 3_000, 4, 0.6, 0.0, 7)
    assert _workload(default).accounts == ACCOUNTS == 36
