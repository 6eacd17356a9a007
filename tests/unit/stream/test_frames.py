"""worker.stream.frames: the chunk-keeping reader gives what asyncio's StreamReader gives, however
the socket cuts the bytes, and install() swaps it in only for the connection it was written for."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest
from aiokafka import conn as aiokafka_conn
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stream import frames as module
from worker.stream.frames import FrameReader


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` in chunks at the given positions, as a socket might deliver it."""
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


async def _read_frames(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """aiokafka's read loop: a 4-byte size, then that many bytes."""
    frames = []
    for _ in range(count):
        size = int.from_bytes(await reader.readexactly(4), "big")
        frames.append(await reader.readexactly(size))
    return frames


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=600), min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=30)
)
def test_frames_read_back_as_written_however_the_socket_cuts_them(
    bodies: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(len(body).to_bytes(4, "big") + body for body in bodies)

    async def run(reader_type: type[asyncio.StreamReader]) -> list[bytes]:
        reader = reader_type(limit=64)
        reading = asyncio.create_task(_read_frames(reader, len(bodies)))
        for chunk in _cut(wire, cuts):
            reader.feed_data(chunk)
            await asyncio.sleep(0)  # the reader runs between chunks, as between socket reads
        reader.feed_eof()
        return await reading

    ours = asyncio.run(run(FrameReader))
    assert ours == bodies
    assert all(type(frame) is bytes for frame in ours)
    assert asyncio.run(run(asyncio.StreamReader)) == ours


@given(st.binary(min_size=1, max_size=200), st.integers(1, 50), st.lists(st.integers(0, 400), max_size=5))
def test_an_end_before_the_frame_gives_the_partial_bytes_as_asyncio_does(
    data: bytes, missing: int, cuts: list[int]
) -> None:
    async def run(reader_type: type[asyncio.StreamReader]) -> bytes:
        reader = reader_type(limit=64)
        for chunk in _cut(data, cuts):
            reader.feed_data(chunk)
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as raised:
            await reader.readexactly(len(data) + missing)
        assert raised.value.expected == len(data) + missing
        assert reader.at_eof()
        return raised.value.partial

    assert asyncio.run(run(FrameReader)) == asyncio.run(run(asyncio.StreamReader)) == data


async def test_an_error_of_the_connection_reaches_the_reader() -> None:
    reader = FrameReader(limit=64)
    reader.feed_data(b"\x00\x00")
    reader.set_exception(ConnectionResetError("reset by peer"))
    with pytest.raises(ConnectionResetError, match="reset by peer"):
        await reader.readexactly(4)


async def test_a_waiting_read_gets_the_bytes_that_arrive_later() -> None:
    reader = FrameReader(limit=64)
    reading = asyncio.create_task(reader.readexactly(6))
    await asyncio.sleep(0)
    reader.feed_data(b"abc")
    await asyncio.sleep(0)
    assert not reading.done()
    reader.feed_data(b"defgh")
    assert await reading == b"abcdef"
    assert await reader.readexactly(2) == b"gh"
    assert not reader.at_eof()
    reader.feed_eof()
    assert reader.at_eof()


class _Transport:
    """Counts the reader's pause and resume calls, as a socket transport would get them."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False


async def test_the_socket_is_paused_past_twice_the_limit_and_resumed_when_read() -> None:
    reader = FrameReader(limit=10)
    transport = _Transport()
    reader.set_transport(transport)  # type: ignore[arg-type]
    reader.feed_data(b"x" * 15)
    assert not transport.paused  # 15 held <= 20
    reader.feed_data(b"y" * 10)
    assert transport.paused  # 25 held > 20
    assert transport.pauses == 1
    assert await reader.readexactly(12) == b"x" * 12
    assert transport.paused  # 13 held > 10: still enough to read without the socket
    assert await reader.readexactly(5) == b"xxxyy"
    assert not transport.paused  # 8 held <= 10
    reading = asyncio.create_task(reader.readexactly(20))
    await asyncio.sleep(0)
    reader.feed_data(b"z" * 12)
    assert await reading == b"y" * 8 + b"z" * 12


async def test_only_readexactly_is_offered() -> None:
    reader = FrameReader(limit=64)
    for call in (reader.read(), reader.readline(), reader.readuntil(b"\n")):
        with pytest.raises(NotImplementedError, match="readexactly"):
            await call


def test_install_has_aiokafkas_connections_make_frame_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "_installed", [])
    monkeypatch.setattr(aiokafka_conn, "asyncio", asyncio)
    assert module.install()
    shim: Any = aiokafka_conn.asyncio
    assert shim.StreamReader is FrameReader
    assert shim.StreamWriter is asyncio.StreamWriter  # every other name: the same object
    assert shim.get_running_loop is asyncio.get_running_loop
    assert asyncio.StreamReader is not FrameReader  # the rest of the process keeps asyncio's
    assert module.install()  # again: nothing more to do
    assert aiokafka_conn.asyncio is shim


def test_install_keeps_aiokafkas_reader_when_its_connection_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A future aiokafka that reads a response some other way than readexactly: its own reader."""

    async def read(self_ref: Any) -> None:
        reader = self_ref()._reader
        await reader.read(4)

    monkeypatch.setattr(module, "_installed", [])
    monkeypatch.setattr(aiokafka_conn, "asyncio", asyncio)
    monkeypatch.setattr(aiokafka_conn.AIOKafkaConnection, "_read", staticmethod(read))
    with caplog.at_level(logging.WARNING, "optout.kafka"):
        assert not module.install()
    assert aiokafka_conn.asyncio is asyncio
    assert "connection has changed" in caplog.text
