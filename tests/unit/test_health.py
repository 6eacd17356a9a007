"""Liveness (the loop makes progress) and readiness (connected, assigned, no outage) apart."""

from __future__ import annotations

import logging

import orjson

from worker.heartbeat import Heartbeat, WorkerState
from worker.logs import ServiceState
from worker.ops.health import Health


def _health(age: float = 0.0, connected: bool = True, partitions: int = 3) -> tuple[Health, ServiceState]:
    beat = Heartbeat()
    beat.last -= age
    kafka = ServiceState("Kafka", logging.getLogger("test.health"))
    return Health([kafka], heartbeat=beat, worker=WorkerState(connected, partitions)), kafka


def test_a_fresh_heartbeat_is_live_and_a_stale_one_is_not() -> None:
    health, _ = _health(age=1)
    assert health.liveness()[0]
    stuck, _ = _health(age=121)
    live, body = stuck.liveness()
    assert not live
    assert orjson.loads(body)["status"] == "stuck"


def test_ready_only_when_connected_assigned_and_no_outage() -> None:
    health, kafka = _health()
    assert health.readiness() == (True, b'{"status":"ready","reasons":[],"partitions":3}')
    kafka.down("refused")
    ready, body = health.readiness()
    assert not ready
    assert orjson.loads(body)["reasons"] == ["Kafka unavailable"]
    assert health.liveness()[0]  # an outage is not a reason to restart
    assert orjson.loads(_health(connected=False)[0].readiness()[1])["reasons"] == [
        "not connected to Kafka yet"
    ]
    assert orjson.loads(_health(partitions=0)[0].readiness()[1])["reasons"] == ["no partitions assigned"]


def test_stopping_is_not_ready() -> None:
    health, _ = _health()
    health.stopping = lambda: True
    assert orjson.loads(health.readiness()[1])["reasons"] == ["stopping"]
