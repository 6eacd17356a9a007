"""Issue 10 on the real broker and Postgres: one confirmation per opt-out (the change topic is the
classifier's memory), and rules-file changes taking effect without a restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.helpers import (
    env_for,
    mo,
    produce,
    read_topic,
    settings_for,
    spawn,
    values,
    wait_until,
)
from worker.sender.pace import CATCHING_UP
from worker.store.postgres import Store
from worker.stream.classifier import run_classifier
from worker.stream.encoded import OwnBatches, c_batch_size
from worker.stream.kafka import make_producer
from worker.stream.produce import producer_ids, send_batches
from worker.stream.projector import run_projector
from worker.stream.recent import _QUIET, RecentTail
from worker.stream.records import RawPassingOver
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

ADDRESS = "+15558880001"


def at(second: int) -> str:
    return f"2026-11-24T12:00:{second:02d}Z"


def stops(*messages: tuple[str, str, int]) -> list[bytes]:
    """MOs of the one subscriber: (message id, text, second of received_at)."""
    return [mo(message_id, text, ADDRESS, received_at=at(second)) for message_id, text, second in messages]


async def _classify(
    broker: str,
    topics: Topics,
    suffix: str,
    messages: list[bytes],
    registry: CollectorRegistry | None = None,
    window: str = "86400",
) -> None:
    """Produce ``messages`` (one partition: one subscriber) and run a classifier over them until idle:
    each call is a classifier process of its own (a restart between calls), in one consumer group."""
    await produce(broker, topics.inbound, [(ADDRESS.encode(), m, 1) for m in messages])
    settings = settings_for(broker, topics, suffix, OPTOUT_CONFIRMATION_WINDOW=window)
    await run_classifier(settings, burst=True, registry=registry)


async def _replied(broker: str, topics: Topics) -> list[str]:
    return sorted(r["in_reply_to"] for r in values(await read_topic(broker, topics.replies)))


async def _history(broker: str, topics: Topics, suffix: str, database_url: str) -> list[str]:
    await run_projector(settings_for(broker, topics, suffix), database_url, burst=True)
    async with await Store.connect(database_url) as store:
        return [f"{row['action']} {row['source_message_id']}" for row in await store.history(ADDRESS)]


async def test_two_stops_in_one_batch_one_confirmation_two_history_entries(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    registry = CollectorRegistry()
    await _classify(broker, topics, group_suffix, stops(("s1", "STOP", 0), ("s2", "stop", 3)), registry)
    assert await _replied(broker, topics) == ["s1"]
    assert await _history(broker, topics, group_suffix, database_url) == ["block s1", "block s2"]
    assert registry.get_sample_value("optout_replies_suppressed_total", {"intent": "opt_out"}) == 1
    assert registry.get_sample_value("optout_replies_produced_total") == 1


async def test_a_repeated_stop_after_a_restart_is_not_confirmed_again(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """The second classifier knows the first one's block from the change topic alone."""
    await _classify(broker, topics, group_suffix, [mo("s1", "STOP", ADDRESS, received_at=at(0))])
    await _classify(broker, topics, group_suffix, [mo("s2", "Stop.", ADDRESS, received_at=at(9))])
    assert await _replied(broker, topics) == ["s1"]
    assert await _history(broker, topics, group_suffix, database_url) == ["block s1", "block s2"]


async def test_a_stop_after_the_window_is_confirmed_again(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    await _classify(broker, topics, group_suffix, stops(("s1", "STOP", 0), ("s2", "STOP", 10)), window="2")
    # After a restart: within 2 s of s2's block, so not confirmed; s4 is 5 s after s3.
    await _classify(broker, topics, group_suffix, stops(("s3", "STOP", 11), ("s4", "STOP", 16)), window="2")
    assert await _replied(broker, topics) == ["s1", "s2", "s4"]
    assert len(await _history(broker, topics, group_suffix, database_url)) == 4


async def test_a_stop_after_an_opt_in_is_confirmed(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    await _classify(broker, topics, group_suffix, [mo("s1", "STOP", ADDRESS, received_at=at(0))])
    await _classify(broker, topics, group_suffix, [mo("in", "START", ADDRESS, received_at=at(1))])
    await _classify(broker, topics, group_suffix, stops(("s2", "STOP", 2), ("s3", "STOP", 3)))
    assert await _replied(broker, topics) == ["in", "s1", "s2"]
    history = await _history(broker, topics, group_suffix, database_url)
    assert [h for h in history if h.startswith("block")] == ["block s1", "block s2", "block s3"]


async def test_with_window_zero_every_stop_is_confirmed(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    messages = stops(("s1", "STOP", 0), ("s2", "STOP", 1))
    await _classify(broker, topics, group_suffix, messages, window="0")
    assert await _replied(broker, topics) == ["s1", "s2"]


async def test_the_tail_fetches_at_the_short_wait_only_while_a_catch_up_is_due(
    broker: str, topics: Topics, group_suffix: str
) -> None:
    """A catch-up waits for two fetch responses: at the start and after each assignment the tail's
    fetches wait 5 ms at the broker, not 100, and its fetch routine idles 10 ms, not 200; once it
    is current the quiet waits are back. The changes already on the topic are known after it."""
    await _classify(broker, topics, group_suffix, [mo("s1", "STOP", ADDRESS, received_at=at(0))])
    stop = asyncio.Event()
    tail = await RecentTail.open(settings_for(broker, topics, group_suffix), stop)
    assert tail is not None
    try:
        fetcher = tail._consumer._fetcher
        assert tail.needs_catch_up
        assert fetcher._fetch_max_wait_ms == CATCHING_UP.wait_ms
        assert fetcher._fetcher_timeout == CATCHING_UP.idle_seconds
        assert await tail.catch_up(stop, seconds=30)
        assert not tail.needs_catch_up
        assert fetcher._fetch_max_wait_ms == _QUIET.wait_ms
        assert fetcher._fetcher_timeout == _QUIET.idle_seconds
        assert len(tail.recent) == 1  # s1's block
        tail.expect_catch_up()  # as an assignment does
        assert fetcher._fetch_max_wait_ms == CATCHING_UP.wait_ms
        assert await tail.catch_up(stop, seconds=30)
        assert fetcher._fetch_max_wait_ms == _QUIET.wait_ms
    finally:
        await tail.close()


async def test_the_tail_passes_over_the_batches_of_the_classifiers_own_producers(
    broker: str, broker_kind: str, topics: Topics, group_suffix: str
) -> None:
    """The batch step merged its own changes: the tail does not read them back. A batch is ours by
    its producer id and epoch where the producer has one (Apache Kafka's idempotent producer), else
    by the identity our producer noted when it built the batch (Tansu); that identity must survive
    the broker. Another producer's changes are read on both, and so is a batch of ours that was not
    noted (the tail reads what it cannot prove ours)."""
    settings = settings_for(broker, topics, group_suffix)
    idempotent = broker_kind == "kafka"
    ours, theirs = (
        make_producer(settings, idempotent=idempotent),
        make_producer(settings, idempotent=idempotent),
    )
    await ours.start()
    await theirs.start()
    own = OwnBatches()
    stop = asyncio.Event()
    tail = None
    try:
        assert await send_batches(ours, [(topics.changes, b"ours", _change("ours"))], own) is None
        elsewhere = OwnBatches()  # another process's
        assert await send_batches(theirs, [(topics.changes, b"theirs", _change("theirs"))], elsewhere) is None
        if idempotent:
            assert ours._txn_manager.has_pid()
            assert theirs._txn_manager.has_pid()
            assert len(own) == 0  # passed over by the producer id instead
        else:
            assert len(own) == 1 or c_batch_size(ours) is None
        tail = await RecentTail.open(settings, stop, RawPassingOver(lambda: producer_ids([ours]), own))
        assert tail is not None
        assert await tail.catch_up(stop, seconds=30)
        assert b"theirs" in tail.recent
        assert (b"ours" in tail.recent) is (not idempotent and c_batch_size(ours) is None)
    finally:
        if tail is not None:
            await tail.close()
        await ours.stop()
        await theirs.stop()


def _change(address: str) -> bytes:
    return orjson.dumps({"action": "block", "address": address})


# -- rules reloaded without a restart --------------------------------------------------------------


def _rules(*keywords: str) -> bytes:
    return orjson.dumps(
        {"version": 1, "rules": [{"name": "custom", "intent": "opt_out", "keywords": list(keywords)}]}
    )


async def test_rules_reload_on_sighup_and_on_change_and_a_bad_file_keeps_the_old_rules(
    broker: str, topics: Topics, group_suffix: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(_rules("HALT"))
    log = tmp_path / "classifier.log"
    env = env_for(broker, topics, group_suffix) | {"OPTOUT_RULES": str(rules)}
    child = spawn("classifier", env, log)

    async def logged(text: str, count: int = 1) -> bool:
        assert child.poll() is None, log.read_text()
        return log.read_text().count(text) >= count

    async def blocked_by_custom(address: str) -> bool:
        changes = values(await read_topic(broker, topics.changes, idle_ms=300))
        return any(c["address"] == address and c["rule"] == "custom" for c in changes)

    try:
        await wait_until(lambda: logged("partitions assigned"), 60, "the classifier to start")
        rules.write_bytes(_rules("HALT", "DESIST"))
        child.send_signal(signal.SIGHUP)
        await wait_until(lambda: logged("rules reloaded from"), 30, "the reload")
        await produce(broker, topics.inbound, [(None, mo("d1", "DESIST", "+15558880101"), 0)])
        await wait_until(lambda: blocked_by_custom("+15558880101"), 30, "DESIST to block")

        rules.write_bytes(b'{"version": 1, "rules": [')  # a half-written file: refused, old rules kept
        child.send_signal(signal.SIGHUP)
        await wait_until(lambda: logged("rules not reloaded (SIGHUP)"), 30, "the refusal")
        await produce(broker, topics.inbound, [(None, mo("d2", "DESIST", "+15558880102"), 0)])
        await wait_until(lambda: blocked_by_custom("+15558880102"), 30, "DESIST to block still")

        rules.write_bytes(_rules("CEASE"))  # no signal: the poll notices the change
        await wait_until(lambda: logged("rules reloaded from", 2), 30, "the reload by polling")
        await produce(broker, topics.inbound, [(None, mo("c1", "CEASE", "+15558880103"), 0)])
        await wait_until(lambda: blocked_by_custom("+15558880103"), 30, "CEASE to block")
        assert "(the file changed)" in log.read_text()

        child.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(child.wait, 60) == 0, log.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
