"""deploy/compose/compose.yaml refers only to what exists: services, volumes, networks, commands,
settings, ports, files and .env variables."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.deploy import code
from tests.unit.deploy.files import (
    COMPOSE_DIR,
    INTERPOLATION,
    compose,
    env_example,
    environment,
    metrics_port,
    optout_services,
    resolved,
    services,
)

SERVICES = sorted(services())
OPTOUT = sorted(optout_services())
#: The long-running optout roles, each scraped by Prometheus.
WORKERS = ("classifier", "projector", "api", "dispatcher")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _interpolations() -> list[re.Match[str]]:
    """Every ``${...}`` in compose.yaml's values (comments left out: the parsed file, not its text)."""

    def strings(node: object) -> list[str]:
        if isinstance(node, dict):
            return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
        if isinstance(node, list):
            return [s for item in node for s in strings(item)]
        return [node] if isinstance(node, str) else []

    return [m for text in strings(compose()) for m in INTERPOLATION.finditer(text)]


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return {name: {"condition": "service_started"} for name in deps} if isinstance(deps, list) else deps


def test_the_stack_has_every_part_of_the_issue() -> None:
    assert {"kafka", "postgres", "topics", "migrate", *WORKERS, "prometheus", "grafana"} <= set(SERVICES)
    assert set(WORKERS) <= set(OPTOUT)


@pytest.mark.parametrize("name", SERVICES)
def test_depends_on_names_services_with_a_condition_they_can_meet(name: str) -> None:
    for dep, spec in _depends_on(services()[name]).items():
        assert dep in services(), f"{name} depends on {dep}, which is not a service"
        condition = spec.get("condition", "service_started")
        assert condition in CONDITIONS, f"{name} -> {dep}: unknown condition {condition}"
        if condition == "service_healthy":
            assert "healthcheck" in services()[dep], f"{name} waits for {dep} healthy; it has no healthcheck"
        if condition == "service_completed_successfully":
            assert services()[dep].get("restart") == "no", f"{name} waits for {dep} to exit; it restarts"


@pytest.mark.parametrize("name", SERVICES)
def test_volumes_and_networks_are_defined_and_bind_mounts_exist(name: str) -> None:
    service = services()[name]
    for volume in service.get("volumes", []):
        source = str(volume).split(":")[0]
        if source.startswith((".", "/")):
            assert (COMPOSE_DIR / source).exists(), f"{name} mounts {source}, which does not exist"
        else:
            assert source in (compose().get("volumes") or {}), f"{name} uses volume {source}, not defined"
    for network in service.get("networks", []):
        assert network in (compose().get("networks") or {}), f"{name} uses network {network}, not defined"


@pytest.mark.parametrize("name", OPTOUT)
def test_each_optout_service_runs_a_command_of_the_cli(name: str) -> None:
    command = optout_services()[name]["command"]
    code.require(command[0], code.commands(), code.NOT_YET_COMMANDS, f"{name}: command")


@pytest.mark.parametrize(
    ("name", "variable"), [(n, v) for n in OPTOUT for v in sorted(environment(optout_services()[n]))]
)
def test_each_optout_variable_is_a_setting_and_its_value_parses(name: str, variable: str) -> None:
    code.require(variable, set(code.settings()), code.NOT_YET_SETTINGS, f"{name}: variable")
    value = resolved(environment(optout_services()[name])[variable])
    code.parse_setting(variable, value)  # raises ValueError with what was expected


@pytest.mark.parametrize("name", WORKERS)
def test_each_worker_has_its_role_metrics_port_and_checks_it(name: str) -> None:
    service = services()[name]
    port = metrics_port(service)
    default = code.default_metrics_port(name)
    if default is not None:
        assert port == default, f"{name}: OPTOUT_METRICS_PORT={port}, the code's default is {default}"
    check = " ".join(service["healthcheck"]["test"])
    assert re.search(rf"127\.0\.0\.1:{port}/livez\b", check), f"{name}: healthcheck is not /livez on {port}"


def test_the_api_listens_where_it_is_published() -> None:
    env = environment(services()["api"])
    assert int(env["OPTOUT_API_PORT"]) == code.API_PORT
    published = [str(p).rsplit(":", 1)[1] for p in services()["api"].get("ports", [])]
    assert published == [str(code.API_PORT)], f"api publishes container ports {published}"
    setting = code.settings().get("OPTOUT_API_PORT")
    if setting is None:
        pytest.skip("OPTOUT_API_PORT is not in the code yet (NOT_YET in tests/unit/deploy/code.py)")
    assert setting.default == str(code.API_PORT), "OPTOUT_API_PORT's default differs from compose's"


def test_every_interpolated_variable_is_documented_in_the_env_example_and_nothing_else() -> None:
    used = {m.group(1) for m in _interpolations()}
    documented = set(env_example())
    assert used - documented == set(), f"used in compose.yaml, missing from .env.example: {used - documented}"
    assert documented - used == set(), f"in .env.example, unused by compose.yaml: {documented - used}"


def test_env_example_values_of_settings_parse() -> None:
    for name, value in env_example().items():
        if name.startswith("OPTOUT_"):
            assert name in code.settings(), f".env.example: {name} is not a setting"
            code.parse_setting(name, value)


def test_secrets_are_required_not_defaulted() -> None:
    """A password with a default would run a stack everyone knows the password of."""
    for match in _interpolations():
        name, operator = match.group(1), match.group(2)
        if re.search(r"PASSWORD|TOKEN|SECRET", name):
            assert operator == ":?", f"${{{name}}} must be required (:?), not defaulted"


def test_published_ports_bind_the_configured_address() -> None:
    for name, service in services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), (
                f"{name} publishes {port} on all hosts"
            )


def test_kafka_is_the_version_the_tests_use() -> None:
    pom = (code.DEPLOY / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert match
    assert services()["kafka"]["image"] == f"apache/kafka:{match.group(1)}"
