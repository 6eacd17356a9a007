"""The delivery mode the classifier picks from OPTOUT_DELIVERY and what the broker has."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from worker.config import Settings
from worker.errors import ConfigError
from worker.stream.classifier import delivery_mode, mode_line
from worker.stream.delivery import Fenced, TransactionsInFlight, transactional_id
from worker.stream.kafka import BrokerFeatures

KAFKA = BrokerFeatures(idempotence=True, transactions=True, detail="")
TANSU = BrokerFeatures(idempotence=False, transactions=False, detail="InitProducerId answered UnknownError")


@pytest.mark.parametrize(
    ("setting", "features", "mode"),
    [
        ("auto", KAFKA, "exactly-once"),
        ("auto", TANSU, "at-least-once"),
        ("exactly-once", KAFKA, "exactly-once"),
        ("at-least-once", KAFKA, "at-least-once"),
        ("at-least-once", TANSU, "at-least-once"),
    ],
)
def test_mode_follows_the_setting_and_the_broker(setting: str, features: BrokerFeatures, mode: str) -> None:
    settings = Settings.from_mapping({"OPTOUT_DELIVERY": setting})
    assert delivery_mode(settings, features) == mode
    line = mode_line(settings, mode, features)
    assert line.startswith(f"delivery: {mode} ")
    assert "\n" not in line


def test_exactly_once_without_transactions_is_a_config_error() -> None:
    settings = Settings.from_mapping({"OPTOUT_DELIVERY": "exactly-once"})
    with pytest.raises(ConfigError, match=r"OPTOUT_DELIVERY=exactly-once.*UnknownError"):
        delivery_mode(settings, TANSU)


def test_at_least_once_line_says_why_and_which_producer() -> None:
    auto = Settings.from_mapping({})
    assert "no transactions: InitProducerId answered UnknownError" in mode_line(auto, "at-least-once", TANSU)
    assert "plain" in mode_line(auto, "at-least-once", TANSU)
    chosen = Settings.from_mapping({"OPTOUT_DELIVERY": "at-least-once"})
    line = mode_line(chosen, "at-least-once", KAFKA)
    assert "OPTOUT_DELIVERY=at-least-once" in line
    assert "idempotent" in line


def test_one_transactional_id_per_input_partition() -> None:
    ids = {transactional_id("g", TopicPartition("mo.inbound", p)) for p in range(8)}
    assert len(ids) == 8
    assert transactional_id("g", TopicPartition("mo.inbound", 3)) == "g-mo.inbound-3"


async def test_the_transactions_in_flight_are_settled_before_the_next_and_their_errors_raise() -> None:
    """The loop classifies the next batch while the last one's transactions commit: settled() waits
    for them and returns the partitions fenced (None: not committed, stopping); with none in
    flight it returns at once with none; an error of the delivery raises there."""
    flight = TransactionsInFlight()
    assert await flight.settled() == set()
    release = asyncio.Event()
    fenced = {TopicPartition("in", 1)}

    async def delivery(result: Fenced | None) -> Fenced | None:
        await release.wait()
        return result

    flight.start(delivery(fenced))
    waiting = asyncio.ensure_future(flight.settled())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the batch in flight is not committed yet
    release.set()
    assert await waiting == fenced
    assert await flight.settled() == set()  # taken: nothing in flight

    flight.start(delivery(None))
    assert await flight.settled() is None  # stopping: not committed

    async def failing() -> Fenced | None:
        raise RuntimeError("refused for good")

    flight.start(failing())
    await flight.wait()  # a rebalance waits without raising
    with pytest.raises(RuntimeError, match="refused for good"):
        await flight.settled()


async def test_cancelling_the_transactions_in_flight_abandons_them() -> None:
    flight = TransactionsInFlight()
    started = asyncio.Event()

    async def forever() -> Fenced | None:
        started.set()
        await asyncio.Event().wait()
        return set()

    flight.start(forever())
    await started.wait()
    flight.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flight.settled()
