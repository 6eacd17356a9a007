"""Kafka responses read off the socket with one copy, not four.

aiokafka reads each response with ``readexactly(4)`` then ``readexactly(size)`` from an
``asyncio.StreamReader``, whose buffer is one ``bytearray``: every chunk the socket gives is
appended to it (a copy), the array grows by reallocation as a fetch response of a few MB arrives
(a copy of what it holds, again and again), and ``readexactly`` copies the frame out twice (a
slice, then ``bytes``). In a STOP storm those were ~4.4% of the classifier's samples under perf
(``memmove`` under ``bytearray_extend``, ``_int_realloc`` and ``bytes_new``), the biggest share of
the copying left. :class:`FrameReader` keeps the socket's chunks as they came and joins a frame's
bytes once, when it is read.

:func:`install` has aiokafka's connections make these readers (once per process), and only while
its connection creates its reader in the line :data:`_CREATED_BY` and reads it only by
``readexactly``: otherwise aiokafka's own, one warning.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import types
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, SupportsIndex

from aiokafka import conn as _conn

from worker.stream.aiokafka_source import source_of

log = logging.getLogger("optout.kafka")

#: The line of ``AIOKafkaConnection.connect`` that makes the connection's reader.
_CREATED_BY = "reader = asyncio.StreamReader(limit=READER_LIMIT, loop=loop)"


class FrameReader(asyncio.StreamReader):
    """An ``asyncio.StreamReader`` for ``readexactly`` only, over the chunks the socket gave.

    Flow control is the base class's (the transport pauses past twice ``limit`` bytes held and
    resumes when a read needs more), counted on the chunks; the base's own buffer stays empty.
    """

    # The base class's private state and helpers this reader shares (CPython 3.11-3.13).
    _eof: bool
    _exception: BaseException | None
    _limit: int
    _paused: bool
    _transport: Any
    _wakeup_waiter: Callable[[], None]
    _wait_for_data: Callable[[str], Awaitable[None]]

    def __init__(self, limit: int = 2**16, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(limit=limit, loop=loop)
        self._chunks: collections.deque[bytes] = collections.deque()
        self._held = 0  # bytes in _chunks not read yet
        self._start = 0  # where the unread bytes of _chunks[0] begin

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        assert not self._eof, "feed_data after feed_eof"
        # bytes from the socket; anything else (a transport that reuses its buffer): a copy
        chunk = data if isinstance(data, bytes) else bytes(data)
        if not chunk:
            return
        self._chunks.append(chunk)
        self._held += len(chunk)
        self._wakeup_waiter()
        if self._transport is not None and not self._paused and self._held > 2 * self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                self._transport = None
            else:
                self._paused = True

    def at_eof(self) -> bool:
        return bool(self._eof and not self._held)

    def _maybe_resume_transport(self) -> None:
        if self._paused and self._held <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    async def readexactly(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        while self._held < n:
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(self._held), n)
            await self._wait_for_data("readexactly")
        data = self._take(n)
        self._maybe_resume_transport()
        return data

    def _take(self, n: int) -> bytes:
        """The next ``n`` held bytes (``n`` <= what is held): one copy, none for a whole chunk."""
        chunks, start = self._chunks, self._start
        self._held -= n
        first = chunks[0]
        end = start + n
        if end <= len(first):  # within the first chunk: the 4-byte sizes, small responses
            if end == len(first):
                chunks.popleft()
                self._start = 0
                return first if start == 0 else first[start:]
            self._start = end
            return first[start:end]
        pieces: list[Any] = [memoryview(chunks.popleft())[start:]]
        wanted = end - len(first)  # from the chunks after the first
        self._start = 0
        while wanted:
            chunk = chunks[0]
            if wanted < len(chunk):  # the frame ends inside this chunk: the rest stays held
                pieces.append(memoryview(chunk)[:wanted])
                self._start = wanted
                break
            pieces.append(chunks.popleft())
            wanted -= len(chunk)
        return b"".join(pieces)

    async def read(self, n: int = -1) -> bytes:
        raise NotImplementedError("a FrameReader reads Kafka frames only: readexactly")

    async def readline(self) -> bytes:
        raise NotImplementedError("a FrameReader reads Kafka frames only: readexactly")

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        raise NotImplementedError("a FrameReader reads Kafka frames only: readexactly")


def _connection_reads_frames() -> bool:
    """Whether aiokafka's connection makes its reader in :data:`_CREATED_BY` and reads it only by
    ``readexactly`` (its source unreadable: no)."""
    connection: Any = getattr(_conn, "AIOKafkaConnection", None)
    made = source_of(getattr(connection, "connect", None))
    read = source_of(getattr(connection, "_read", None))
    if made is None or read is None:
        return False
    reads = [line.strip() for line in read.splitlines() if "reader." in line]
    return _CREATED_BY in made and bool(reads) and all(".readexactly(" in line for line in reads)


_installed: list[bool] = []


def install() -> bool:
    """Have aiokafka's connections read through :class:`FrameReader` (once per process): its
    ``conn`` module sees an ``asyncio`` whose ``StreamReader`` is ours, every other name the same
    object. False, with one warning, when its connection is not the one this was written for."""
    if _installed:
        return _installed[0]
    if not _connection_reads_frames() or not isinstance(getattr(_conn, "asyncio", None), types.ModuleType):
        log.warning("aiokafka's connection has changed: responses are read the usual way (slower)")
        _installed.append(False)
        return False
    shim = types.ModuleType("asyncio", asyncio.__doc__)
    shim.__dict__.update(vars(asyncio))
    shim.StreamReader = FrameReader  # type: ignore[attr-defined]
    _conn.asyncio = shim
    _installed.append(True)
    return True
