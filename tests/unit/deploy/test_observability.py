"""Prometheus and Grafana files refer only to what exists: series and labels in the code, compose
services and their metrics ports, provisioned files and datasources. And `promtool` agrees."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy import code
from tests.unit.deploy.files import (
    ALERTS,
    GRAFANA,
    PROMETHEUS,
    dashboard,
    environment,
    grafana_dashboards,
    load_yaml,
    metrics_port,
    optout_services,
    resolved,
    services,
    volume_host_path,
)


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, panel) for path in grafana_dashboards() for panel in dashboard(path)["panels"]]


def _dashboard_queries() -> list[tuple[str, str]]:
    return [
        (f"{name}: {panel['title']} {target['refId']}", target["expr"])
        for name, panel in _panels()
        for target in panel.get("targets", [])
    ]


@pytest.mark.parametrize(
    ("where", "expr"), [(f"alerts.yaml: {r['alert']}", r["expr"]) for r in _alert_rules()]
)
def test_alert_expressions_read_series_and_labels_the_code_exposes(where: str, expr: str) -> None:
    code.check_promql(str(expr), where)


@pytest.mark.parametrize(("where", "expr"), _dashboard_queries())
def test_dashboard_expressions_read_series_and_labels_the_code_exposes(where: str, expr: str) -> None:
    code.check_promql(expr, where)


def _alert_roles() -> list[str]:
    """The roles alerts name: in their labels and in ``role="..."`` selectors."""
    roles = {r["labels"]["role"] for r in _alert_rules() if "role" in r.get("labels", {})}
    return sorted(roles.union(*(re.findall(r'role="(\w+)"', str(r["expr"])) for r in _alert_rules())))


def test_dashboard_job_selectors_name_scrape_jobs() -> None:
    jobs = {job["job_name"] for job in load_yaml(PROMETHEUS)["scrape_configs"]}
    selected = {job for _, expr in _dashboard_queries() for job in re.findall(r'\bjob="([^"]+)"', expr)}
    assert selected, "no job selector to check"
    assert selected <= jobs, f"dashboard selects jobs prometheus.yml does not scrape: {selected - jobs}"


@pytest.mark.parametrize("role", _alert_roles())
def test_absent_alerts_name_roles_the_cli_reports(role: str) -> None:
    code.require(role, set(code.roles()), code.NOT_YET_ROLES, "role")


def test_prometheus_scrapes_every_optout_worker_on_its_metrics_port() -> None:
    config = load_yaml(PROMETHEUS)
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    scraped = set()
    for target in targets:
        host, _, port = target.rpartition(":")
        if host == "localhost":
            continue
        assert host in services(), f"prometheus.yml scrapes {target}: {host} is not a compose service"
        assert int(port) == metrics_port(services()[host]), f"{target}: not {host}'s OPTOUT_METRICS_PORT"
        scraped.add(host)
    long_running = {n for n, s in optout_services().items() if "OPTOUT_METRICS_PORT" in environment(s)}
    assert long_running <= scraped, f"not scraped: {long_running - scraped}"
    rule_files = [PROMETHEUS.parent / f for f in config["rule_files"]]
    assert ALERTS in rule_files
    assert all(f.is_file() for f in rule_files)


def test_compose_mounts_the_prometheus_config_where_the_command_reads_it() -> None:
    prometheus = services()["prometheus"]
    flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert volume_host_path(prometheus, flag.split("=", 1)[1]) == PROMETHEUS.resolve()


def test_grafana_provisioning_points_at_files_that_exist() -> None:
    grafana = services()["grafana"]
    provisioning = volume_host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == (GRAFANA / "provisioning").resolve()
    for provider_file in sorted((provisioning / "dashboards").glob("*.yaml")):
        for provider in load_yaml(provider_file)["providers"]:
            folder = volume_host_path(grafana, provider["options"]["path"])
            assert folder is not None, f"{provider_file.name}: {provider['options']['path']}"
            assert folder.is_dir(), f"{provider_file.name}: {provider['options']['path']}"
            assert list(folder.glob("*.json")), f"{provider_file.name}: no dashboard in {folder}"
    home = resolved(environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    home_file = volume_host_path(grafana, home)
    assert home_file is not None, f"home dashboard {home} is not mounted"
    assert home_file.is_file(), f"home dashboard {home} is not mounted"


def _datasources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml")):
        found |= {ds["uid"]: ds for ds in load_yaml(path)["datasources"]}
    return found


def test_the_datasource_is_the_prometheus_service() -> None:
    for ds in _datasources().values():
        host_port = ds["url"].removeprefix("http://")
        host, _, port = host_port.partition(":")
        assert host in services(), f"datasource {ds['uid']}: {host} is not a compose service"
        command = " ".join(services()[host].get("command", []))
        listen = (
            command.split("--web.listen-address=")[1].split()[0]
            if "--web.listen-address" in command
            else ":9090"
        )
        assert listen.endswith(f":{port}"), f"datasource {ds['uid']}: {host} does not listen on {port}"


@pytest.mark.parametrize(("where", "panel"), _panels(), ids=[f"{n}: {p['title']}" for n, p in _panels()])
def test_panels_use_a_provisioned_datasource(where: str, panel: dict[str, Any]) -> None:
    uids = set(_datasources())
    for part in (panel, *panel.get("targets", [])):
        assert part["datasource"]["uid"] in uids, f"{where}: {panel['title']} uses an unknown datasource"


def test_the_dashboard_has_the_panels_operators_need() -> None:
    for path in grafana_dashboards():
        board = dashboard(path)
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        titles = " | ".join(p["title"] for p in board["panels"]).lower()
        for needed in ("throughput", "lag", "dead letters", "propagation", "snapshot age", "api", "webhook"):
            assert needed in titles, f"{path.name}: no panel for {needed}"


# --- promtool ------------------------------------------------------------------------------------


def _promtool() -> str | None:
    """``$PROMTOOL``, the one `make promtool` fetched, or one on PATH."""
    cached = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "optout" / "promtool" / "promtool"
    )
    for candidate in (os.environ.get("PROMTOOL"), str(cached), shutil.which("promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.parametrize("what", ["rules", "config"])
def test_promtool_accepts_the_rules_and_the_config(what: str) -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not found: `make promtool` fetches it (Debian's prometheus package)")
    target = ALERTS if what == "rules" else PROMETHEUS
    result = subprocess.run(
        [promtool, "check", what, str(target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
