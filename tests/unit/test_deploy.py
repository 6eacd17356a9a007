"""The deploy/ files say what the code expects of them."""

from __future__ import annotations

import configparser
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    return parser["Service"]


def test_the_projector_unit_sets_its_working_and_snapshot_directories() -> None:
    service = _unit("optout-projector.service")
    assert service["WorkingDirectory"] == "/var/lib/optout"
    assert service["StateDirectory"] == "optout"
    text = (DEPLOY / "systemd" / "optout-projector.service").read_text()
    assert "Environment=OPTOUT_SNAPSHOT_DIR=/var/lib/optout/snapshots" in text
    assert "Environment=OPTOUT_DATA_DIR=/var/lib/optout" in text


def test_kubernetes_probes_use_liveness_and_readiness_endpoints() -> None:
    for name in ("classifier.yaml", "projector.yaml"):
        text = (DEPLOY / "k8s" / name).read_text()
        assert "path: /livez" in text
        assert "path: /readyz" in text
        assert "/healthz" not in text
    assert "OPTOUT_SNAPSHOT_TOKEN_FILE" in (DEPLOY / "k8s" / "projector.yaml").read_text()
