"""The delivery mode the classifier picks from OPTOUT_DELIVERY and what the broker has."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from worker.config import Settings
from worker.errors import ConfigError
from worker.stream.classifier import delivery_mode, mode_line
from worker.stream.delivery import retry_added_partitions_sooner, transactional_id
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


def test_added_partitions_are_asked_again_sooner(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.producer import sender

    monkeypatch.setattr(sender, "BACKOFF_OVERRIDE", 0.02)
    assert retry_added_partitions_sooner(0.005) is True
    assert sender.BACKOFF_OVERRIDE == 0.005  # what AddPartitionsToTxn's handler returns as its backoff
    monkeypatch.setattr(sender, "BACKOFF_OVERRIDE", None)
    assert retry_added_partitions_sooner(0.005) is False  # not aiokafka 0.14's layout: left alone
    assert sender.BACKOFF_OVERRIDE is None
