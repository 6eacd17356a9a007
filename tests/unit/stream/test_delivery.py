"""The delivery mode the classifier picks from OPTOUT_DELIVERY and what the broker has; how an
exactly-once producer retries adding its partitions."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from tests.unit.factories import transaction_sender
from worker.config import Settings
from worker.errors import ConfigError
from worker.stream import txn_retry
from worker.stream.classifier import delivery_mode, mode_line
from worker.stream.delivery import transaction_layout, transactional_id
from worker.stream.kafka import BrokerFeatures
from worker.stream.txn_retry import retry_seconds

KAFKA = BrokerFeatures(idempotence=True, transactions=True, detail="", group_fencing=True)
OLD_KAFKA = BrokerFeatures(idempotence=True, transactions=True, detail="")  # before 2.5: no KIP-447
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


@pytest.mark.parametrize(
    ("setting", "features", "layout"),
    [
        ("auto", KAFKA, "per-process"),
        ("auto", OLD_KAFKA, "per-partition"),
        ("per-process", KAFKA, "per-process"),
        ("per-partition", KAFKA, "per-partition"),
        ("per-partition", OLD_KAFKA, "per-partition"),
    ],
)
def test_transaction_layout_follows_the_setting_and_the_broker(
    setting: str, features: BrokerFeatures, layout: str
) -> None:
    settings = Settings.from_mapping({"OPTOUT_TRANSACTIONS": setting})
    assert transaction_layout(settings, features) == layout
    line = mode_line(settings, "exactly-once", features)
    assert ("one transactional producer for the process" in line) == (layout == "per-process")
    assert ("a transactional producer per input partition" in line) == (layout == "per-partition")


def test_per_process_on_a_broker_without_kip_447_is_a_one_line_config_error() -> None:
    settings = Settings.from_mapping({"OPTOUT_TRANSACTIONS": "per-process"})
    with pytest.raises(
        ConfigError, match=r"^OPTOUT_TRANSACTIONS=per-process, but .* use auto or per-partition$"
    ):
        transaction_layout(settings, OLD_KAFKA)


def test_one_transactional_id_per_input_partition() -> None:
    ids = {transactional_id("g", TopicPartition("mo.inbound", p)) for p in range(8)}
    assert len(ids) == 8
    assert transactional_id("g", TopicPartition("mo.inbound", 3)) == "g-mo.inbound-3"


def test_retry_waits_double_from_one_ms_to_twenty() -> None:
    assert [retry_seconds(n) for n in range(1, 8)] == [0.001, 0.002, 0.004, 0.008, 0.016, 0.02, 0.02]
    assert retry_seconds(3, first=0.005, most=0.005) == 0.005  # a fixed wait, as before stop 34


async def test_added_partitions_are_asked_again_sooner_then_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka 0.14's own handler, answered by real AddPartitionsToTxn responses: after
    CONCURRENT_TRANSACTIONS (code 51) it waits 1, 2, 4 ... ms instead of 20; an added partition
    starts the count again; other answers keep aiokafka's waits."""
    from aiokafka.producer import sender
    from aiokafka.protocol.transaction import AddPartitionsToTxnResponse_v0 as Response

    original = txn_retry.aiokafka_handler()
    monkeypatch.setattr(sender, "AddPartitionsToTxnHandler", original)  # put back after the test
    assert txn_retry.install() is True
    assert txn_retry.install() is True  # again (each PartitionProducers does): still one layer over it
    assert sender.AddPartitionsToTxnHandler.__mro__[1] is original

    tp = TopicPartition("changes", 0)
    manager, owner = transaction_sender(tp)

    def answer(code: int) -> float | None:
        handler = sender.AddPartitionsToTxnHandler(owner, [tp])
        result: float | None = handler.handle_response(Response(0, [("changes", [(0, code)])]))
        return result

    assert [answer(51) for _ in range(3)] == [0.001, 0.002, 0.004]
    assert answer(0) is None  # added
    assert manager.txn_partitions == {tp}
    manager.committing_transaction()
    manager.complete_transaction()
    manager.begin_transaction()
    manager.maybe_add_partition_to_txn(tp)
    assert answer(51) == 0.001  # the next transaction counts from the start
    assert answer(14) == 0.1  # coordinator loading: aiokafka's own backoff, untouched


def test_retry_left_to_aiokafka_when_its_sender_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.producer import sender

    original = sender.AddPartitionsToTxnHandler
    monkeypatch.setattr(sender, "BACKOFF_OVERRIDE", None)
    assert txn_retry.install() is False  # not aiokafka 0.14's layout: left alone
    assert sender.AddPartitionsToTxnHandler is original
