"""bench.txntrace: the broker's answers and the requests' times, read from aiokafka 0.14's own
handlers answered by real responses, and the summary the latency report prints."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from bench.txntrace import Trace, errors_in, install, render, request_of, summarize
from tests.unit.factories import transaction_sender
from worker.stream import txn_retry


def test_errors_in_every_layout() -> None:
    from aiokafka.protocol.transaction import AddOffsetsToTxnResponse_v0, AddPartitionsToTxnResponse_v0

    assert errors_in(AddOffsetsToTxnResponse_v0(0, 51)) == [51]
    assert errors_in(AddOffsetsToTxnResponse_v0(0, 0)) == []
    assert errors_in(AddPartitionsToTxnResponse_v0(0, [("changes", [(0, 51), (1, 0), (2, 51)])])) == [51, 51]
    produce = SimpleNamespace(topics=[("changes", [(0, 0, 5, -1, 0), (1, 6, -1, -1, 0)])])
    assert errors_in(produce) == [6]


async def test_answers_and_times_of_aiokafka_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real AddPartitionsToTxn answers through aiokafka's handler, under the worker's retry
    subclass: each answer with CONCURRENT_TRANSACTIONS is counted once, and undone cleanly."""
    from aiokafka.producer import sender
    from aiokafka.protocol.transaction import AddPartitionsToTxnResponse_v0 as Response

    original = txn_retry.aiokafka_handler()
    monkeypatch.setattr(sender, "AddPartitionsToTxnHandler", original)
    handle_response = original.__dict__["handle_response"]
    trace = Trace()
    uninstall = install(trace)
    assert txn_retry.install() is True
    tp = TopicPartition("changes", 0)
    manager, owner = transaction_sender(tp)
    handler = sender.AddPartitionsToTxnHandler(owner, [tp])
    assert request_of(handler) == "AddPartitionsToTxn"  # the worker's subclass counts as aiokafka's
    assert handler.handle_response(Response(0, [("changes", [(0, 51)])])) == 0.001
    assert handler.handle_response(Response(0, [("changes", [(0, 0)])])) is None
    assert trace.answers == {"AddPartitionsToTxn ConcurrentTransactions": 1}

    class Client:
        async def send(self, node_id: int, request: object, group: object = None) -> object:
            return Response(0, [("changes", [(1, 0)])])

    manager.maybe_add_partition_to_txn(TopicPartition("changes", 1))
    owner.client = Client()
    assert await sender.AddPartitionsToTxnHandler(owner, [TopicPartition("changes", 1)]).do(0) is True
    assert len(trace.requests["AddPartitionsToTxn"]) == 1
    uninstall()
    assert original.__dict__["handle_response"] is handle_response


def test_summary_and_its_lines() -> None:
    trace = Trace(
        requests={"Produce": [0.004, 0.006, 0.050], "EndTxn": [0.002]},
        transactions=[0.010, 0.020, 0.030, 0.200],
        records=[10, 20, 30, 40],
    )
    trace.answers["AddPartitionsToTxn ConcurrentTransactions"] = 3
    summary = summarize(trace)
    assert summary["transactions"] == {
        "count": 4, "p50_ms": 20.0, "p90_ms": 200.0, "p99_ms": 200.0, "max_ms": 200.0, "records_p50": 20,
    }  # fmt: skip
    assert list(summary["requests"]) == ["Produce", "EndTxn"]  # in the transaction's order
    assert summary["requests"]["Produce"]["p50_ms"] == 6.0
    lines = render(summary)
    assert lines[0].startswith("  transactions traced: 4 (20 records p50), each p50 20.0 ms")
    assert "    answered AddPartitionsToTxn ConcurrentTransactions: 3" in lines
