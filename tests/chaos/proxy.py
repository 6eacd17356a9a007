"""A fault-injecting TCP proxy between a worker and a server (here: the projector and Postgres).

Written here rather than taken from a library: toxiproxy is a Go server to install and run, and
the four faults needed are a few lines each on asyncio streams:

- ``latency(seconds)``: every chunk waits before it is forwarded, both ways;
- ``stall()`` / ``resume()``: nothing is forwarded and nothing is closed (a half-open connection, as
  behind a dead NAT entry): the client sees neither data nor an error until its own timeout;
- ``reset()``: every open connection is aborted (RST), as when a load balancer drops them.

The upstream may be a TCP address or a Unix socket (the embedded Postgres listens only on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] | Path) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections = 0

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.reset()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:  # connections still being piped: end them before the loop closes
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def latency(self, seconds: float) -> None:
        self.delay = seconds

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def reset(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.connections += 1
        try:
            if isinstance(self.upstream, Path):
                server_reader, server_writer = await asyncio.open_unix_connection(str(self.upstream))
            else:
                server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, client_writer),
                self._pipe(server_reader, client_writer, server_writer),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            # close() ends the connections still open; returning (rather than re-raising) keeps
            # asyncio's stream callback from logging the cancellation as an error.
            return
        finally:
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: asyncio.StreamWriter
    ) -> None:
        """Forward ``reader`` (the ``source`` side) to ``writer``: an end (FIN) is passed on as an
        end, a reset as a reset of both sides, as a real middlebox does. Waiting for the other
        direction instead would keep a SIGKILLed client's server session (a Postgres backend idle
        in a transaction, holding its row locks) alive for as long as the proxy runs."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except OSError:  # _accept's cleanup follows once the other direction sees the end
            _abort(source)
            _abort(writer)
            return
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN (SO_LINGER 0), as a load balancer dropping the connection does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()
