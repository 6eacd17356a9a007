"""The deploy files, parsed: compose, Prometheus, Grafana, Kubernetes, systemd, the Dockerfile."""

from __future__ import annotations

import configparser
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.code import DEPLOY

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DOCKERFILE = DEPLOY / "Dockerfile"

#: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` (compose interpolation).
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def compose() -> dict[str, Any]:
    loaded = load_yaml(COMPOSE)
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def optout_services() -> dict[str, dict[str, Any]]:
    """The services that run the optout image (their command is an ``optout`` command)."""
    return {name: s for name, s in services().items() if str(s.get("image", "")).startswith("optout-worker")}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def resolved(value: str) -> str:
    """``value`` with each interpolation replaced by its default (what compose uses without .env)."""
    return INTERPOLATION.sub(lambda m: m.group(3) or "", value)


def metrics_port(service: dict[str, Any]) -> int:
    return int(resolved(environment(service)["OPTOUT_METRICS_PORT"]))


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def volume_host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The host directory a bind mount of ``service`` puts at ``container_path`` (or above it)."""
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source.startswith((".", "/")) and (container_path + "/").startswith(target.rstrip("/") + "/"):
            return (COMPOSE_DIR / source / container_path[len(target) :].lstrip("/")).resolve()
    return None


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def grafana_dashboards() -> list[Path]:
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def dashboard(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def systemd_service(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser["Service"]
