"""The broker of a chaos run, optionally behind a fault proxy, and restartable when it keeps data.

Every client (workers, the input producer, the final reads) reaches the broker through
:class:`~tests.chaos.proxy.FaultProxy`: the broker *advertises* the proxy's port, so the
connections a client opens after the metadata answer go through it too. That gives the
broker-side network faults (latency, half-open, reset) without touching the workers.

Apache Kafka keeps its data in a directory, so it can also crash (SIGKILL) and come back with its
topics, offsets and transactions: the ``broker-restart`` fault. Tansu keeps everything in memory;
restarting it would lose the input, so it gets the network faults only.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.chaos.proxy import FaultProxy
from worker.dev.kafka_broker import KafkaBroker, free_port
from worker.dev.stack import start_broker

BROKER_KINDS = ("tansu", "kafka")


@dataclass
class ChaosBroker:
    kind: str
    bootstrap: str
    """What clients use: the proxy's address."""
    proxy: FaultProxy
    restart: Callable[[], None] | None
    """SIGKILL and a warm start with the data kept (Apache Kafka); None where data would be lost."""
    gone: Callable[[], str | None] = lambda: None
    """Why the broker process is not running (its exit code and last log lines), or None: a run
    whose broker died says so instead of waiting for it until the test's timeout."""


@asynccontextmanager
async def chaos_broker(kind: str, workdir: Path) -> AsyncIterator[ChaosBroker]:
    """A broker of ``kind`` behind a fault proxy; stopped (and the proxy closed) on the way out."""
    if kind not in BROKER_KINDS:
        raise ValueError(f"broker kind {kind!r}: use one of {', '.join(BROKER_KINDS)}")
    port = free_port()
    proxy = await FaultProxy(("127.0.0.1", port)).start()
    try:
        if kind == "tansu":
            tansu = await asyncio.to_thread(start_broker, port, workdir / "tansu.log", 15.0, proxy.port)
            try:
                yield ChaosBroker(
                    kind, tansu.bootstrap, proxy, None, lambda: _gone(tansu.process, tansu.log_path)
                )
            finally:
                tansu.stop()
            return
        kafka = KafkaBroker(
            workdir / "kafka",
            port=port,
            config={
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}",
                "group.min.session.timeout.ms": "1000",
            },
        )
        await asyncio.to_thread(kafka.start)

        def restart() -> None:
            kafka.kill()
            kafka.start()

        try:
            # A lambda, not a partial: a restart replaces kafka.process.
            yield ChaosBroker(
                kind, f"127.0.0.1:{proxy.port}", proxy, restart, lambda: _gone(kafka.process, kafka.log_path)
            )
        finally:
            kafka.stop()
    finally:
        await proxy.close()


def _gone(process: subprocess.Popen[bytes] | None, log: Path | None) -> str | None:
    if process is None or process.poll() is None:
        return None
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    return f"the broker (pid {process.pid}) exited with code {process.returncode}; the end of {log}:\n{tail}"
