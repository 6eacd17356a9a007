"""Build info and process metrics on every worker, and alerts for absent workers."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from worker import __version__
from worker.ops.metrics import ClassifierMetrics, register_process_metrics

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"


def test_build_info_and_process_metrics_are_exposed() -> None:
    registry = CollectorRegistry()
    register_process_metrics(registry, "classifier")
    assert (
        registry.get_sample_value(
            "optout_build_info", {"version": __version__, "role": "classifier", "python": _python()}
        )
        == 1
    )
    text = generate_latest(registry).decode()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"):
        assert f"\n{name} " in text, name
    assert "python_info{" in text


def test_absent_workers_are_alerted() -> None:
    """That every series an alert or dashboard uses exists (of every role, with its labels) is
    checked in tests/unit/deploy/test_observability.py."""
    alerts = ALERTS.read_text()
    assert 'absent(optout_build_info{role="classifier"})' in alerts
    assert 'absent(optout_build_info{role="projector"})' in alerts


def _python() -> str:
    import platform

    return platform.python_version()


def test_uncanonical_addresses_are_exported_per_channel() -> None:
    from worker.stream.batch import BatchOutput
    from worker.stream.classifier import _observe

    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    assert registry.get_sample_value("optout_addresses_uncanonical_total", {"channel": "whatsapp"}) == 0
    out = BatchOutput(emitted_at="2026-11-24T12:00:00.000000Z", worker_version="0")
    out.uncanonical = {"sms": 2, "other": 1}
    _observe(metrics, out)
    _observe(metrics, out)
    assert registry.get_sample_value("optout_addresses_uncanonical_total", {"channel": "sms"}) == 4
    assert registry.get_sample_value("optout_addresses_uncanonical_total", {"channel": "other"}) == 2
