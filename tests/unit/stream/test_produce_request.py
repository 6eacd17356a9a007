"""worker.stream.produce_request: the one-pass produce request is byte for byte aiokafka's, for
every version aiokafka sends, and install() swaps it in only for the layout it was written for."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiokafka.conn import AIOKafkaConnection
from aiokafka.producer import sender
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.protocol.types import Int32, Schema
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.stream import produce_request as module

VERSIONS = ProduceRequest._CLASSES

record_sets = st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(bytearray))
topics = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=20),
        st.lists(st.tuples(st.integers(0, 2**31 - 1), record_sets), max_size=4),
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(VERSIONS),
    st.one_of(st.none(), st.text(max_size=30)),
    st.sampled_from([-1, 0, 1]),
    st.integers(0, 2**31 - 1),
    topics,
)
def test_the_one_pass_request_is_aiokafkas_byte_for_byte(
    version: type[Any], transactional_id: str | None, acks: int, timeout: int, topics: Any
) -> None:
    if version.API_VERSION < 3:
        transactional_id = None  # aiokafka refuses a transactional id below v3
    fields = {"transactional_id": transactional_id, "required_acks": acks, "timeout": timeout}
    fields["topics"] = topics
    ours = module.OnePassProduceRequest(**fields).build(version)
    theirs = ProduceRequest(**fields).build(version)
    assert bytes(ours.encode()) == theirs.encode()
    assert isinstance(ours, version)  # the same header, response type and version
    assert ours.build_request_header(7, "c").encode() == theirs.build_request_header(7, "c").encode()


def test_install_swaps_in_the_one_pass_request_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender, "ProduceRequest", ProduceRequest)
    assert module.install()
    assert sender.ProduceRequest is module.OnePassProduceRequest
    assert module.install()  # again: nothing more to do
    assert sender.ProduceRequest is module.OnePassProduceRequest


def test_install_keeps_aiokafkas_request_when_its_layout_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A future aiokafka whose request has another field: encoded the usual way, one warning."""
    layout = {"API_VERSION": 9, "SCHEMA": Schema(("extra", Int32))}
    changed = type("ProduceRequest_v9", (VERSIONS[-1],), layout)
    monkeypatch.setattr(sender, "ProduceRequest", ProduceRequest)
    monkeypatch.setattr(ProduceRequest, "_CLASSES", (*VERSIONS, changed))
    with caplog.at_level(logging.WARNING, "optout.kafka"):
        assert not module.install()
    assert sender.ProduceRequest is ProduceRequest
    assert "produce request has changed" in caplog.text


class _Writer:
    """What a connection writes, in place of its socket."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def write(self, data: Any) -> None:
        assert isinstance(data, bytes)  # what a transport accepts
        self.written.append(data)

    async def drain(self) -> None:
        return None


async def _framed(request: Any, version: type[Any]) -> bytes:
    """The bytes a real ``AIOKafkaConnection.send`` writes for ``request`` at ``version``."""
    connection = AIOKafkaConnection("127.0.0.1", 9092, client_id="optout-test")
    writer = _Writer()
    connection._writer = writer
    connection._versions = {ProduceRequest.API_KEY: (version.API_VERSION, version.API_VERSION)}
    await connection.send(request, expect_response=False)
    assert len(writer.written) == 1
    frame: bytes = writer.written[0]
    return frame


@pytest.mark.parametrize("version", VERSIONS, ids=lambda version: f"v{version.API_VERSION}")
async def test_the_connection_frames_the_unjoined_request_as_aiokafkas(
    version: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, the request reaches the connection in pieces and leaves it as one frame (size,
    header, body: one join), byte for byte the frame of aiokafka's own request."""
    monkeypatch.setattr(sender, "ProduceRequest", ProduceRequest)
    monkeypatch.setattr(module, "_FRAMED_BY_ADDING", [False])
    assert module.install()
    assert module._FRAMED_BY_ADDING == [True]  # this aiokafka frames by adding
    transactional_id = "tx" if version.API_VERSION >= 3 else None
    fields: dict[str, Any] = {"transactional_id": transactional_id, "required_acks": -1, "timeout": 30_000}
    fields["topics"] = [("blocklist.changes", [(0, b"batch-0" * 100), (3, bytearray(b"batch-3"))])]
    assert isinstance(module.OnePassProduceRequest(**fields).build(version).encode(), module.Unjoined)
    ours = await _framed(module.OnePassProduceRequest(**fields), version)
    theirs = await _framed(ProduceRequest(**fields), version)
    assert ours == theirs
    assert int.from_bytes(ours[:4], "big") == len(ours) - 4


def test_install_encodes_bytes_when_the_connection_frames_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A future aiokafka whose connection writes the size and the message apart (or joins them
    some other way) gets bytes: an unjoined request would reach its socket as an object."""

    def send(self: Any, request: Any, expect_response: bool = True) -> Any:
        message = b"".join([request.encode()])
        return self._writer.writelines([len(message).to_bytes(4, "big"), message])

    monkeypatch.setattr(AIOKafkaConnection, "send", send)
    monkeypatch.setattr(sender, "ProduceRequest", ProduceRequest)
    monkeypatch.setattr(module, "_FRAMED_BY_ADDING", [True])
    assert module.install()
    assert module._FRAMED_BY_ADDING == [False]
    request = module.OnePassProduceRequest(None, 1, 5, [("t", [(0, b"x")])])
    assert isinstance(request.build(VERSIONS[2]).encode(), bytes)
