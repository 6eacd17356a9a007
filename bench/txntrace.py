"""Trace the classifier's exactly-once transactions during a benchmark: how long each took, how
long each broker request took (its retries' waits included), and what the broker answered other
than success.

``python -m bench.txntrace OUT.json classifier`` runs ``optout classifier`` with aiokafka's
producer request handlers and :meth:`~worker.stream.delivery.TransactionalOutput.deliver` wrapped,
and writes the summary (:func:`summarize`) to ``OUT.json`` when the process exits.
``python -m bench.latency --broker kafka --trace`` runs the classifier so and prints the summary
under its latency figures.

Why it exists: stops 27, 28 and 34 each timed the transaction's steps and counted the broker's
CONCURRENT_TRANSACTIONS answers with a patch they did not keep; stop 35 needed it again. The wrappers
read the clock and append to a list per request, so they cost a little CPU: compare traced runs
with traced runs. Measurement only, never in the worker.
"""

from __future__ import annotations

import atexit
import runpy
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.classifier import PERCENTILES, percentile, percentile_ms

#: aiokafka 0.14's producer request handlers (``aiokafka.producer.sender``), by the request they send.
HANDLERS = {
    "InitPIDHandler": "InitProducerId",
    "AddPartitionsToTxnHandler": "AddPartitionsToTxn",
    "SendProduceReqHandler": "Produce",
    "AddOffsetsToTxnHandler": "AddOffsetsToTxn",
    "TxnOffsetCommitHandler": "TxnOffsetCommit",
    "EndTxnHandler": "EndTxn",
}


@dataclass(slots=True)
class Trace:
    """What the wrappers saw."""

    requests: dict[str, list[float]] = field(default_factory=dict)
    """Request name -> seconds of each attempt: sent, answered, and the wait before a retry."""
    answers: Counter[str] = field(default_factory=Counter)
    """``"<request> <error>"`` -> how many answers carried that error."""
    transactions: list[float] = field(default_factory=list)
    """Seconds of each transaction, begin to commit (its retries included)."""
    records: list[int] = field(default_factory=list)
    """Records produced in each transaction."""


def request_of(handler: object) -> str:
    """The request a handler sends, found along its class's bases (the worker's subclass of
    AddPartitionsToTxnHandler, :mod:`worker.stream.txn_retry`, counts as aiokafka's own)."""
    for cls in type(handler).__mro__:
        if cls.__name__ in HANDLERS:
            return HANDLERS[cls.__name__]
    return type(handler).__name__


def errors_in(response: Any) -> list[int]:
    """The non-zero error codes of a producer request's response, whichever its layout."""
    code = getattr(response, "error_code", None)
    if isinstance(code, int):
        return [code] if code else []
    if hasattr(response, "errors"):  # AddPartitionsToTxn, TxnOffsetCommit: [(topic, [(partition, code)])]
        return [part[1] for _, parts in response.errors for part in parts if part[1]]
    if hasattr(response, "topics"):  # Produce: [(topic, [(partition, code, ...)])]
        return [part[1] for _, parts in response.topics for part in parts if part[1]]
    return []


def install(trace: Trace) -> Callable[[], None]:
    """Wrap aiokafka's producer handlers and the classifier's transaction; returns the undo."""
    from aiokafka.errors import for_code
    from aiokafka.producer import sender

    from worker.stream.delivery import TransactionalOutput

    undo: list[tuple[type, str, Any]] = []

    def replace(cls: type, name: str, wrapper: Any) -> None:
        undo.append((cls, name, cls.__dict__[name]))
        setattr(cls, name, wrapper)

    def timed_do(original: Any) -> Any:
        async def do(self: Any, node_id: int) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, node_id)
            finally:
                trace.requests.setdefault(request_of(self), []).append(time.perf_counter() - started)

        return do

    def counted(original: Any) -> Any:
        def handle_response(self: Any, response: Any) -> Any:
            for code in set(errors_in(response)):
                trace.answers[f"{request_of(self)} {for_code(code).__name__}"] += 1
            return original(self, response)

        return handle_response

    replace(sender.BaseHandler, "do", timed_do(sender.BaseHandler.do))
    for name in HANDLERS:
        cls = getattr(sender, name)
        if "do" in cls.__dict__:  # the produce handler has its own
            replace(cls, "do", timed_do(cls.__dict__["do"]))
        replace(cls, "handle_response", counted(cls.__dict__["handle_response"]))

    deliver = TransactionalOutput.deliver

    async def traced_deliver(
        self: TransactionalOutput, offsets: Any, records: Sequence[Any], *rest: Any
    ) -> Any:
        started = time.perf_counter()
        result = await deliver(self, offsets, records, *rest)
        trace.transactions.append(time.perf_counter() - started)
        trace.records.append(len(records))
        return result

    replace(TransactionalOutput, "deliver", traced_deliver)

    def uninstall() -> None:
        for cls, name, original in reversed(undo):
            setattr(cls, name, original)

    return uninstall


def summarize(trace: Trace) -> dict[str, Any]:
    """Percentiles in milliseconds (nearest rank) of the transactions and of each request."""

    def timing(seconds: list[float]) -> dict[str, Any]:
        ordered = sorted(seconds)  # once: percentile_ms sorts again, in linear time on sorted input
        return {"count": len(ordered), **{f"{name}_ms": percentile_ms(ordered, q) for name, q in PERCENTILES}}

    return {
        "transactions": {**timing(trace.transactions), "records_p50": percentile(trace.records, 50)},
        "requests": {
            name: timing(trace.requests[name]) for name in HANDLERS.values() if name in trace.requests
        },
        "answers": dict(trace.answers.most_common()),
    }


def render(summary: dict[str, Any]) -> list[str]:
    """The summary as report lines."""
    txns = summary["transactions"]
    lines = [
        f"  transactions traced: {txns['count']:,} ({txns['records_p50']} records p50), each p50 "
        f"{txns['p50_ms']} ms  p90 {txns['p90_ms']} ms  p99 {txns['p99_ms']} ms  max {txns['max_ms']} ms"
    ]
    for name, t in summary["requests"].items():
        lines.append(
            f"    {name:<18} {t['count']:>7,}  p50 {t['p50_ms']} ms  p99 {t['p99_ms']} ms  "
            f"max {t['max_ms']} ms"
        )
    for answer, count in summary["answers"].items():
        lines.append(f"    answered {answer}: {count:,}")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        sys.exit("usage: python -m bench.txntrace OUT.json classifier [options]")
    out = Path(args.pop(0))
    trace = Trace()
    install(trace)
    atexit.register(lambda: out.write_bytes(orjson.dumps(summarize(trace))))
    sys.argv = ["optout", *args]
    runpy.run_module("worker", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
