"""The short chaos run (``make chaos`` is the long one): faults while MOs arrive, then the final
state, history and topics compared with a reference computed from the input alone."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from tests.chaos.brokers import chaos_broker
from tests.chaos.proxy import FaultProxy
from tests.chaos.run import ChaosConfig, run_chaos, table
from tests.integration.helpers import create_topics
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration


async def test_nothing_is_lost_or_applied_twice_under_faults(
    broker: str, broker_kind: str, topics: Topics, tmp_path_factory: pytest.TempPathFactory
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
    if broker_kind == "kafka":  # exactly-once: no reply request twice unless its MO is on the input twice
        assert result.replies_beyond_input == 0, result
    assert sum(stats.count for stats in result.faults.values()) >= 13  # 14 where a tmpfs can be mounted


async def test_nothing_is_lost_when_the_network_to_the_broker_fails_or_the_broker_restarts(
    broker_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A broker of its own (the session's is shared), behind a fault proxy: latency, a half-open
    link past the session timeout and reset connections between every worker and the broker, and on
    Apache Kafka a crash and warm restart of the broker with its data."""
    work = tmp_path_factory.mktemp("chaos-broker")
    config = ChaosConfig(
        mos=2_000, rate=250, kills=1, freezes=0, rebalances=0, pg_restarts=0, pg_stops=0,
        pg_connection_kills=0, pg_slow=0, net_faults=0, disk_full=0,
        broker_net_faults=1, broker_half_open_seconds=4, broker_restarts=1,
    )  # fmt: skip
    async with chaos_broker(broker_kind, work) as broker:
        topics = await create_topics(broker.bootstrap)
        result = await run_chaos(broker, topics, work, config)
    print(table(result))
    assert result.expected_events > 50
    assert result.lost == 0, result
    assert result.unexpected == 0, result
    assert result.duplicated_rows == 0, result
    assert result.state_equal, result
    assert all(code == 0 for code in result.exit_codes.values()), _why(result.exit_codes, result.failed_logs)
    expected = {"broker-latency", "broker-half-open", "broker-reset", "kill-classifier", "kill-projector"}
    if broker_kind == "kafka":
        expected.add("broker-restart")
        # Exactly-once through a half-open link past the session timeout, a broker crash and a
        # classifier kill: a reply request twice only where the input producer sent its MO twice.
        assert result.replies_beyond_input == 0, result
    assert set(result.faults) == expected


def _why(exit_codes: dict[str, int | None], logs: dict[str, str]) -> str:
    """The exit codes and the last log lines of the workers that failed, in full (not a repr cut short)."""
    return "\n".join(f"{name} exited {exit_codes[name]}:\n{log}" for name, log in logs.items())


async def test_the_fault_proxy_passes_a_client_reset_on_to_the_server() -> None:
    """A SIGKILLed worker's socket closes with RST when data was unread: the proxy must end the
    server's side too, as a real middlebox does, or the server session lives on (a Postgres backend
    idle in a transaction keeps its row locks and stalls the next projector for good)."""
    ended = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await reader.read()  # until the client's end reaches us; the server sends nothing
        ended.set()
        writer.close()

    upstream = await asyncio.start_server(server, "127.0.0.1", 0)
    proxy = await FaultProxy(("127.0.0.1", upstream.sockets[0].getsockname()[1])).start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"BEGIN; SELECT ... FOR UPDATE")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST, as the kernel sends for a killed process with unread data
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await proxy.close()
        upstream.close()
        await upstream.wait_closed()
