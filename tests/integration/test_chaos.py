"""The short chaos run (``make chaos`` is the long one): faults while MOs arrive, then the final
state, history and topics compared with a reference computed from the input alone."""

from __future__ import annotations

import pytest

from tests.chaos.run import ChaosConfig, run_chaos, table
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


async def test_nothing_is_lost_or_applied_twice_under_faults(
    broker: str, topics: Topics, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # 10 s of input at 300 MO/s, so the thirteen faults land while MOs are still arriving.
    config = ChaosConfig(mos=3_000, rate=300, kills=2, rebalances=1, pg_stop_seconds=2)
    result = await run_chaos(broker, topics, tmp_path_factory.mktemp("chaos"), config)
    print(table(result))
    assert result.expected_events > 100  # the workload has opt-outs and opt-ins to lose
    assert result.lost == 0, result
    assert result.unexpected == 0, result
    assert result.duplicated_rows == 0, result
    assert result.state_equal, result
    assert all(code == 0 for code in result.exit_codes.values()), result.exit_codes
    assert result.snapshot_ok is True  # snapshots every 2 s, the last one verifies
    assert sum(stats.count for stats in result.faults.values()) >= 13  # 14 where a tmpfs can be mounted
