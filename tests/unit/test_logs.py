from __future__ import annotations

import logging

import pytest

from worker.backoff import Backoff
from worker.logs import KafkaNoiseFilter, ServiceState


def test_an_outage_is_two_lines_however_many_errors(caplog: pytest.LogCaptureFixture) -> None:
    state = ServiceState("Kafka", logging.getLogger("test.state"))
    with caplog.at_level(logging.WARNING, logger="test.state"):
        for i in range(50):
            state.down(f"attempt {i} refused")
        state.up()
        state.up()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("Kafka unavailable (attempt 0 refused)")
    assert lines[1].startswith("Kafka available again")
    assert "(50 errors)" in lines[1]


def test_quiet_period_counts_as_recovered() -> None:
    state = ServiceState("Kafka", logging.getLogger("test.quiet"), quiet_seconds=0.0)
    state.down("refused")
    state.last_error_at -= 1
    state.tick()
    assert not state.is_down


def test_filter_folds_library_connection_errors_only() -> None:
    noise = KafkaNoiseFilter()

    def record(name: str, message: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, None)

    assert noise.filter(record("aiokafka", "Unable connect to node with id 1")) is False
    assert noise.filter(record("aiokafka.consumer.fetcher", "Failed fetch: KafkaConnectionError")) is False
    assert noise.filter(record("aiokafka", "Heartbeat failed for group g because it is rebalancing")) is True
    assert noise.filter(record("optout.classifier", "Unable connect to node")) is True
    assert noise.filter(record("aiokafka", "Unable connect to node", logging.INFO)) is True


async def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff("Postgres", logging.getLogger("test.backoff"), initial=0.001, maximum=0.004)
    delays = []
    for _ in range(4):
        delays.append(backoff.delay)
        await backoff.failed(ConnectionError("refused"))
    assert delays == [0.001, 0.002, 0.004, 0.004]
    assert backoff.failing
    assert backoff.attempts == 4
    backoff.succeeded()
    assert not backoff.failing
    assert backoff.delay == 0.001
    assert backoff.attempts == 0


def test_security_failures_become_one_reason() -> None:
    import asyncio
    import ssl

    from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

    from worker.logs import KAFKA, security_reason

    sasl = SaslAuthenticationFailed(
        "Authentication failed during authentication due to invalid credentials "
        "with SASL mechanism SCRAM-SHA-512"
    )
    assert security_reason(sasl) == "authentication failed (SCRAM-SHA-512): invalid credentials"
    assert "OPTOUT_KAFKA_SASL_MECHANISM" in (security_reason(UnsupportedSaslMechanismError("x")) or "")
    closed = KafkaConnectionError("Connection at 127.0.0.1:1 closed")
    closed.__cause__ = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    assert "refused the client certificate" in (security_reason(closed) or "")
    tls_port = KafkaConnectionError("closed")
    tls_port.__cause__ = asyncio.IncompleteReadError(b"\x15\x03\x03", 0x15030300)
    assert "speaks TLS" in (security_reason(tls_port) or "")
    assert security_reason(KafkaConnectionError("Connection refused")) is None

    noise = KafkaNoiseFilter()
    KAFKA.up()
    try:
        record = logging.LogRecord(
            "aiokafka", logging.ERROR, __file__, 1, 'Unable connect to "%s:%s": %s', ("h", 1, sasl), None
        )
        assert noise.filter(record) is False
        assert KAFKA.is_down
    finally:
        KAFKA.up()
