"""Kubernetes manifests, systemd units and the Dockerfile refer only to commands, settings, ports
and objects that exist; and the reference checker itself sees what it must."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.unit.deploy import code
from tests.unit.deploy.code import DEPLOY, ROOT, parse_promql
from tests.unit.deploy.files import DOCKERFILE, k8s_documents

SYSTEMD = DEPLOY / "systemd"


def test_the_checker_finds_the_codes_series_with_their_suffixes_and_labels() -> None:
    found = code.metrics()
    assert found["optout_records_dead_lettered_total"] == {"code"}
    assert "optout_end_to_end_delay_seconds_bucket" in found
    assert "optout_end_to_end_delay_seconds" not in found  # a histogram has no bare series
    assert found["optout_build_info"] == {"version", "role", "python"}
    assert "process_cpu_seconds_total" in found
    assert {"classifier", "projector"} <= code.roles()
    assert {"classifier", "projector", "topics", "migrate"} <= code.commands()


def test_the_promql_reader_separates_series_from_functions_labels_and_ranges() -> None:
    query = parse_promql(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{job="x", code=~"y|z"}[5m]))) '
        "> on (instance) group_left b_total offset 1h and time() - c"
    )
    assert query.series == {"a_bucket", "b_total", "c"}
    assert query.labels == {"le", "route", "job", "code", "instance"}
    with pytest.raises(pytest.fail.Exception, match="optout_nope_total does not exist"):
        code.check_promql("rate(optout_nope_total[5m])", "probe")
    with pytest.raises(AssertionError, match=r"labels \['intent'\]"):
        code.check_promql("sum by (intent) (optout_records_dead_lettered_total)", "probe")


# --- Kubernetes ----------------------------------------------------------------------------------


def _containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for name, doc in k8s_documents():
        template = doc.get("spec", {}).get("template")
        if template:
            found += [(name, template, c) for c in template["spec"]["containers"]]
    return found


def _objects(kind: str) -> set[str]:
    return {doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == kind}


@pytest.mark.parametrize(("where", "template", "container"), _containers(), ids=lambda v: str(v)[:40])
def test_k8s_containers_run_commands_and_settings_that_exist(
    where: str, template: dict[str, Any], container: dict[str, Any]
) -> None:
    code.require(container["args"][0], code.commands(), code.NOT_YET_COMMANDS, f"{where}: command")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    for name, value in env.items():
        code.require(name, set(code.settings()), code.NOT_YET_SETTINGS, f"{where}: variable")
        if value is not None:
            code.parse_setting(name, value)
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        assert ref["name"] in _objects(kind), f"{where}: {kind} {ref['name']} is not defined"
    if "OPTOUT_METRICS_PORT" in env:
        port = int(str(env["OPTOUT_METRICS_PORT"]))
        assert {"name": "metrics", "containerPort": port} in container["ports"], f"{where}: metrics port"
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        default = code.default_metrics_port(container["args"][0])
        assert default in (None, port), f"{where}: port {port}, the code's default is {default}"
    for volume in template["spec"].get("volumes", []):
        for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
            if key in volume:
                name = volume[key].get("name") or volume[key].get("secretName")
                assert name in _objects(kind), f"{where}: volume {volume['name']}: {kind} {name} not defined"


def test_k8s_configmap_and_secret_keys_are_settings() -> None:
    for where, doc in k8s_documents():
        if doc["kind"] in ("ConfigMap", "Secret") and doc["metadata"]["name"] == "optout-worker":
            data = doc.get("data") or doc.get("stringData") or {}
            for name, value in data.items():
                assert name in code.settings(), f"{where}: {name} is not a setting"
                if "change-me" not in str(value):
                    code.parse_setting(name, str(value))


# --- systemd and the Dockerfile ------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(p.name for p in SYSTEMD.glob("*.service")))
def test_systemd_units_run_commands_and_set_settings_that_exist(unit: str) -> None:
    text = (SYSTEMD / unit).read_text()
    commands = re.findall(r"^ExecStart=\S*/optout (\w+)", text, re.MULTILINE)
    assert commands, f"{unit}: no ExecStart=.../optout COMMAND"
    for command in commands:
        code.require(command, code.commands(), code.NOT_YET_COMMANDS, f"{unit}: command")
    for name, value in re.findall(r"^Environment=(\w+)=(.*)$", text, re.MULTILINE):
        assert name in code.settings(), f"{unit}: {name} is not a setting"
        code.parse_setting(name, value)
    for env_file in re.findall(r"^EnvironmentFile=-?/etc/optout/(\S+)$", text, re.MULTILINE):
        assert (SYSTEMD / f"{env_file}.example").is_file(), f"{unit}: no {env_file}.example beside it"


def test_the_systemd_env_example_names_only_settings() -> None:
    text = (SYSTEMD / "optout.env.example").read_text()
    names = re.findall(r"^#?\s*(OPTOUT_\w+)=", text, re.MULTILINE)
    assert names
    for name in names:
        assert name in code.settings(), f"optout.env.example: {name} is not a setting"


def test_the_dockerfile_sets_settings_and_installs_extras_that_exist() -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env_lines = re.findall(r"^ENV (.+)$", text, re.MULTILINE)
    names = [pair.split("=")[0] for line in env_lines for pair in line.split()]
    assert names
    for name in names:
        assert name in code.settings(), f"Dockerfile: ENV {name} is not a setting"
    cmd = re.search(r'^CMD \["(\w+)"', text, re.MULTILINE)
    assert cmd
    code.require(cmd.group(1), code.commands(), code.NOT_YET_COMMANDS, "Dockerfile: CMD")
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installed = [
        e for group in re.findall(r"pip install [^\n]*'\.\[([^\]]+)\]'", text) for e in group.split(",")
    ]
    assert "local" not in installed, "the image must not carry the embedded broker and Postgres"
    for extra in installed:
        code.require(extra, extras, code.NOT_YET_EXTRAS, "Dockerfile: extra")
