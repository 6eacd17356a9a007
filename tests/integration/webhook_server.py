"""A real HTTP/1.1 server for the webhook tests: asyncio sockets on a free port of 127.0.0.1.

Each test gives it a handler that decides, per request, how long to wait and which status to
answer; every request is recorded (path, headers, body) with the status sent, so the tests check
what the dispatcher really put on the wire. Keep-alive, like a real receiver: httpx reuses
connections. No mock of the client or of the transport is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    """What the server answered; None while in flight, or when the client left first."""

    @property
    def event_id(self) -> str:
        return str(orjson.loads(self.body)["event_id"])

    @property
    def address(self) -> str:
        return str(orjson.loads(self.body)["address"])


#: (request, the requests received before it on the same path) -> status to answer. It may sleep.
Handler = Callable[[Request, list[Request]], Awaitable[int]]


@dataclass
class WebhookServer:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def answered(self, path: str, status: int = 200) -> list[Request]:
        return [r for r in self.on(path) if r.status == status]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(path, headers, body)
                earlier = self.on(path)
                self.requests.append(request)
                status = await self.handler(request, earlier)
                if reader.at_eof():
                    break  # the client gave up waiting (its timeout): it never sees this answer
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok".encode()
                )
                await writer.drain()
                request.status = status
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the client closed the connection (after its timeout, or at the end)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def webhook_server(handler: Handler) -> AsyncIterator[WebhookServer]:
    state = WebhookServer(handler)
    server = await asyncio.start_server(state._serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        # Handlers still sleeping (a request the dispatcher gave up on) are cancelled, not awaited.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)
