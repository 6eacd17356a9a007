"""How soon an exactly-once producer asks again to add a partition to its new transaction when the
broker answers CONCURRENT_TRANSACTIONS: 1 ms, then twice as long each time, at most 20 ms.

Why: each partition's next transaction starts as soon as its last commit returns
(:class:`worker.stream.cycles.TransactionCycles`), while the broker is still writing that commit's
markers; until they are written, AddPartitionsToTxn is answered CONCURRENT_TRANSACTIONS. aiokafka
then waits a fixed 20 ms (its ``BACKOFF_OVERRIDE``; it cites KAFKA-5477). The
markers usually take a millisecond or two. Measured on Apache Kafka, 2 cores (``python -m
bench.transactions --retry 5:5,2:2,1:1,1:20``: one partition's transactions of 25 change events
back to back, 600 per setting in alternated rounds, two runs), per transaction p50 / p90 / p99 /
mean, in ms:

- a fixed 5 ms (stops 27-33): 9.8-11.0 / 18.5-20.7 / 34.2-37.2 / 10.5-11.5;
- a fixed 2 ms: 6.6-7.6 / 12.7-13.6 / 19.9-24.9 / 7.8-8.6;
- a fixed 1 ms: 6.5-6.7 / 11.1-11.7 / 18.7-19.3 / 7.2-7.3;
- 1 ms doubling to 20 (this): 6.0-6.8 / 11.3-11.8 / 17.3-18.2 / 7.1-7.4, with 0.7
  CONCURRENT_TRANSACTIONS answers per transaction.

End to end (``python -m bench.latency --broker kafka --seconds 120``, campaign mix at 20,000 MO/s,
two alternated rounds in a slow hour of the box), MO -> change event appended p50 / p90 34.2-37.2
/ 72.3-76.5 ms against 40.6-43.6 / 82.0-82.9 with the fixed 5 ms; the p99, set by this shared
machine's stalls, did not move (151.7-173.2 against 149.6-151.2 ms).

A fixed short wait, though, makes a slow broker (markers taking tens of ms, on a loaded cluster)
answer a request per millisecond per partition; doubling the wait keeps the first retries quick and
bounds the rest to aiokafka's own rate.

aiokafka 0.14 has no setting for it: its sender builds an ``AddPartitionsToTxnHandler`` (a name
looked up in its module at each request) whose ``handle_response`` returns the module constant
``BACKOFF_OVERRIDE`` in exactly this case. :func:`install` puts in a subclass that returns the
escalating wait instead, and leaves aiokafka alone when a later version no longer looks like that.
"""

from __future__ import annotations

from typing import Any

from aiokafka.producer import sender as aiokafka_sender

from worker.constants import TRANSACTION_RETRY_FIRST_SECONDS as FIRST
from worker.constants import TRANSACTION_RETRY_MOST_SECONDS as MOST

_TRIES = "_optout_concurrent_answers"
"""Attribute on aiokafka's transaction manager: CONCURRENT_TRANSACTIONS answers in a row."""


def retry_seconds(answers: int, first: float = FIRST, most: float = MOST) -> float:
    """The wait after the ``answers``-th CONCURRENT_TRANSACTIONS in a row (1 for the first)."""
    return min(first * 2.0 ** max(answers - 1, 0), most)


def aiokafka_handler() -> Any:
    """aiokafka's own ``AddPartitionsToTxnHandler`` class, under the subclass :func:`install` put
    in if it did (None when its sender has no such name)."""
    current = getattr(aiokafka_sender, "AddPartitionsToTxnHandler", None)
    return getattr(current, "_optout_base", current)


def install(first: float = FIRST, most: float = MOST) -> bool:
    """Have aiokafka's AddPartitionsToTxn wait ``first``, doubled each time up to ``most``, after
    CONCURRENT_TRANSACTIONS (for the process; a second call sets the new bounds). False, and
    aiokafka's own behaviour kept, when its sender is not laid out as 0.14's."""
    base = aiokafka_handler()
    override = getattr(aiokafka_sender, "BACKOFF_OVERRIDE", None)
    if not isinstance(base, type) or not isinstance(override, float):
        return False

    class EscalatingAddPartitions(base):  # type: ignore[misc,valid-type]
        _optout_base = base

        def handle_response(self, resp: Any) -> float | None:
            backoff: float | None = super().handle_response(resp)
            manager = self._sender._txn_manager
            if backoff is not None and backoff is aiokafka_sender.BACKOFF_OVERRIDE:  # that answer
                answers = getattr(manager, _TRIES, 0) + 1
                setattr(manager, _TRIES, answers)
                return retry_seconds(answers, first, most)
            setattr(manager, _TRIES, 0)
            return backoff

    aiokafka_sender.AddPartitionsToTxnHandler = EscalatingAddPartitions
    return True
