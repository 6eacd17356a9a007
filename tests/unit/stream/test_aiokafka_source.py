"""worker.stream.aiokafka_source: the source of a function, or None where there is none to read."""

from __future__ import annotations

from aiokafka.conn import AIOKafkaConnection

from worker.stream.aiokafka_source import source_of


def test_the_source_of_an_aiokafka_method_is_its_code() -> None:
    source = source_of(AIOKafkaConnection.send)
    assert source is not None
    assert source.lstrip().startswith("def send(")


def test_nothing_to_read_is_none() -> None:
    assert source_of(None) is None  # a method a newer aiokafka no longer has
    assert source_of(len) is None  # built in: no source file
