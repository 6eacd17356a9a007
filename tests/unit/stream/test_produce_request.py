"""worker.stream.produce_request: the one-pass produce request is byte for byte aiokafka's, for
every version aiokafka sends, and install() swaps it in only for the layout it was written for."""

from __future__ import annotations

import logging
from typing import Any

import pytest
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
    assert ours.encode() == theirs.encode()
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
