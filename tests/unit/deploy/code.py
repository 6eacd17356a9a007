"""What the deploy files may refer to, read from the code: commands, settings, metrics, roles.

NOT YET: names the deploy files use for parts of issue 11 that land on other branches (the HTTP API,
the webhook dispatcher). A reference to one of these that the code lacks is *skipped* with one line
naming it; any other missing name fails. At merge, empty these sets: every name must then exist.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import worker
from worker import constants
from worker.cli import build_parser
from worker.config import SETTINGS, Setting

NOT_YET_COMMANDS: frozenset[str] = frozenset()
NOT_YET_SETTINGS: frozenset[str] = frozenset()
NOT_YET_METRICS: frozenset[str] = frozenset()
NOT_YET_ROLES: frozenset[str] = frozenset()  # optout_build_info{role=...}
NOT_YET_EXTRAS: frozenset[str] = frozenset()  # extras the Dockerfile installs

#: The HTTP API's port in deploy/compose: OPTOUT_API_PORT's default must be this (the api engineer's
#: default; the lead reconciles them at merge).
API_PORT = 8080

ROOT = Path(worker.__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

#: Series Prometheus makes itself (not the code's): allowed in expressions.
PROMETHEUS_SERIES: frozenset[str] = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
#: Labels Prometheus adds to every scraped series, and the histogram bucket label.
TARGET_LABELS: frozenset[str] = frozenset({"job", "instance", "le"})


def require(name: str, known: frozenset[str] | set[str], not_yet: frozenset[str], what: str) -> None:
    """Pass if ``name`` is in ``known``; skip (one line) if it is a name of a part not merged yet;
    fail otherwise."""
    if name in known:
        return
    if name in not_yet:
        pytest.skip(f"{what} {name} is not in the code yet (NOT_YET in tests/unit/deploy/code.py)")
    pytest.fail(f"{what} {name} does not exist in the code; known: {', '.join(sorted(known))}")


@cache
def commands() -> frozenset[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return frozenset(subparsers.choices)


@cache
def settings() -> dict[str, Setting]:
    return {s.env: s for s in SETTINGS}


def _metric_modules() -> Iterator[ModuleType]:
    """worker/ops/metrics.py and any other ``metrics.py`` under worker/ (a role's own series)."""
    for path in sorted((ROOT / "worker").rglob("metrics.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        yield importlib.import_module(dotted)


def _registries() -> Iterator[CollectorRegistry]:
    """One fresh registry per metrics class (each takes only ``registry``) and per
    ``register_*(registry, role)`` function: the series a process of each role registers."""
    for module in _metric_modules():
        members: dict[str, Any] = vars(module)
        for name, obj in members.items():
            if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
                continue
            params = list(inspect.signature(obj).parameters) if callable(obj) else []
            if inspect.isclass(obj) and params == ["registry"]:
                registry = CollectorRegistry()
                metrics_class: Any = obj  # isclass() narrows to type[object], which takes no argument
                metrics_class(registry)
                yield registry
            elif inspect.isfunction(obj) and name.startswith("register_") and params == ["registry", "role"]:
                registry = CollectorRegistry()
                obj(registry, "probe")
                yield registry


#: The series a metric of each type exposes (text format), from its name without suffix.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}


def _exposed(collector: object) -> list[str]:
    """The series names ``collector`` exposes, labeled children or not. prometheus_client's metric
    objects know their ``_name`` and ``_type`` (private, but a labeled metric without children yet
    has no samples in ``collect()``); other collectors (process, platform) are read by collecting."""
    name, kind = getattr(collector, "_name", None), getattr(collector, "_type", None)
    if isinstance(name, str) and isinstance(kind, str):
        return [name + suffix for suffix in _SUFFIXES[kind]]
    collect = getattr(collector, "collect")  # noqa: B009 (every registered collector has it)
    return [sample.name for family in collect() for sample in family.samples]


@cache
def metrics() -> dict[str, frozenset[str]]:
    """Every series name the code can expose (``_total``, ``_bucket``, ``_sum``, ``_count`` where
    the type has them, never a counter's or histogram's bare name) and its label names."""
    found: dict[str, set[str]] = {}
    for registry in _registries():
        for collector in list(registry._collector_to_names):
            labels = set(getattr(collector, "_labelnames", ()))
            for name in _exposed(collector):
                found.setdefault(name, set()).update(labels)
    return {name: frozenset(labels) for name, labels in found.items()}


def parse_setting(variable: str, value: str) -> None:
    """``value`` is valid for the setting ``variable`` (ValueError says what was expected). A file
    the setting names lives on the machine deployed to: an absolute path that is missing here passes."""
    try:
        settings()[variable].parse(value)
    except ValueError as exc:
        if not (value.startswith("/") and "does not exist" in str(exc)):
            raise


@cache
def roles() -> frozenset[str]:
    """The ``role`` values the code gives optout_build_info (``role="..."``: worker/cli.py for the
    workers, worker/api/serve.py for the API, ...)."""
    return frozenset(
        role
        for path in (ROOT / "worker").rglob("*.py")
        for role in re.findall(r'role="(\w+)"', path.read_text())
    )


def default_metrics_port(role: str) -> int | None:
    """``constants.METRICS_PORT_<ROLE>``, the port a role listens on when OPTOUT_METRICS_PORT is empty."""
    value = getattr(constants, f"METRICS_PORT_{role.upper()}", None)
    return value if isinstance(value, int) else None


# --- PromQL: the series and labels an expression reads -------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan"}
)


@dataclass(frozen=True)
class Query:
    series: frozenset[str]
    labels: frozenset[str]


def parse_promql(expr: str) -> Query:
    """The series names and label names of a PromQL expression: enough to check references, not a
    full parser (strings, matchers, ranges and grouping clauses are cut out, then every identifier
    not followed by ``(`` and not a keyword is a series name)."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)
    for body in _MATCHERS.findall(text):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for body in _GROUPING.findall(text):
        labels.update(part.strip() for part in body.split(",") if part.strip())
    text = _GROUPING.sub(" ", text)
    series = {
        name
        for name, call in _IDENT.findall(text)
        if not call and name.lower() not in _KEYWORDS and not re.fullmatch(r"\d.*", name)
    }
    return Query(frozenset(series), frozenset(labels))


def check_promql(expr: str, where: str) -> None:
    """Every series of ``expr`` exists in the code (or Prometheus makes it), and every label it
    names is one of those series' labels (or a target label)."""
    query = parse_promql(expr)
    assert query.series, f"{where}: no series found in {expr!r}"
    known = metrics()
    for name in sorted(query.series):
        if name not in PROMETHEUS_SERIES:
            require(name, set(known), NOT_YET_METRICS, f"{where}: series")
    allowed = set(TARGET_LABELS).union(*(known.get(name, frozenset()) for name in query.series))
    unknown = query.labels - allowed
    assert not unknown, f"{where}: labels {sorted(unknown)} are not labels of {sorted(query.series)}"
