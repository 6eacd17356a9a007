"""``optout dev`` (what ``make run`` runs): the whole system on one laptop.

Starts the Tansu broker, or Apache Kafka with ``--broker kafka`` (unless ``OPTOUT_KAFKA_BOOTSTRAP``
is given), and the embedded Postgres
(unless ``OPTOUT_DATABASE_URL`` is given), creates the topics, applies the migrations, then runs
the classifier and the projector as two child processes (as in production: separate processes,
separate metrics), prints where everything is, and on Ctrl-C stops the children (which finish and
commit their batch), then the servers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from worker.backoff import Backoff
from worker.config import Settings, redact_url
from worker.constants import METRICS_PORT_CLASSIFIER, METRICS_PORT_PROJECTOR
from worker.dev.kafka_broker import KafkaBroker
from worker.dev.stack import (
    Broker,
    EmbeddedPostgres,
    die_with_parent,
    free_port,
    port_is_free,
    start_broker,
    start_kafka,
    start_postgres,
)
from worker.dev.state import read_state, remove_state, state_path, write_state
from worker.errors import ConfigError, OptoutError

BROKER_PORT = 9092
_EXAMPLE = (
    '{"message_id":"m1","channel":"sms","from":"+15551230001","to":"12345",'
    '"account_id":"acme","text":"Stop.","received_at":"2026-11-24T12:00:00Z"}'
)


def run_dev(
    settings: Settings,
    explicit_bootstrap: bool,
    broker_kind: str = "tansu",
    child_env: dict[str, str] | None = None,
) -> int:
    """Run until Ctrl-C, SIGTERM or SIGHUP (0), or until a worker exits or cannot start (its exit
    code, never 0). ``child_env``: settings given as flags, passed on to the workers."""
    from worker.classify.rulesfile import load_rules

    load_rules(settings.rules or None)  # a bad rules file fails here, before anything starts
    data = settings.data_dir
    running = read_state(data)
    if running is not None:
        raise ConfigError(
            f"optout dev is already running here (pid {running['pid']}, {state_path(data)}); stop it first"
        )
    data.mkdir(parents=True, exist_ok=True)
    broker: Broker | KafkaBroker | None = None
    fresh_broker = False
    postgres: EmbeddedPostgres | None = None
    children: list[subprocess.Popen[bytes]] = []
    stopping = False
    exit_code = 0

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP: the terminal was closed. Stop everything as for Ctrl-C rather than die and orphan it.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, request_stop)
    try:
        bootstrap = settings.kafka_bootstrap
        if not explicit_bootstrap:
            port = BROKER_PORT if port_is_free(BROKER_PORT) else 0
            if broker_kind == "kafka":
                # Kafka keeps its topics under the data dir: only a newly formatted one is fresh.
                broker = start_kafka(data / "kafka", port)
                fresh_broker = "format" in broker.timings
            else:
                broker = start_broker(port, log_path=data / "tansu.log")
                fresh_broker = True
            bootstrap = broker.bootstrap
        database_url = settings.database_url
        if not database_url:
            postgres = start_postgres(data / "postgres")
            database_url = postgres.url
        settings = settings.replace(kafka_bootstrap=bootstrap, database_url=database_url)
        asyncio.run(_prepare(settings, fresh_broker=fresh_broker))
        # OPTOUT_METRICS_PORT=N: the classifier gets N and the projector N+1 (one port each); 0: free ones.
        configured = settings.metrics_port
        ports = {
            "classifier": _pick_port(configured, METRICS_PORT_CLASSIFIER),
            "projector": _pick_port(configured + 1 if configured else configured, METRICS_PORT_PROJECTOR),
        }
        env = (
            os.environ
            | (child_env or {})
            | {
                "OPTOUT_KAFKA_BOOTSTRAP": bootstrap,
                "OPTOUT_DATABASE_URL": database_url,
                "OPTOUT_METRICS_HOST": "127.0.0.1",
            }
        )
        for name, port in ports.items():
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker", name],
                    env=env | {"OPTOUT_METRICS_PORT": str(port)},
                    stdin=subprocess.DEVNULL,
                    # Own process group: a terminal Ctrl-C reaches only us, and we stop the
                    # workers first (they finish their batch) and the broker last.
                    start_new_session=True,
                    preexec_fn=die_with_parent,  # and they die with us, however we die
                )
            )
        failed = _wait_until_serving(children, ports, lambda: stopping)
        if failed is not None:
            name, code = failed
            print(f"optout dev: the {name} could not start (exit code {code}); stopping", file=sys.stderr)
            return code or 1
        write_state(
            data,
            kafka_bootstrap=bootstrap,
            database_url=database_url,
            metrics={name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()},
            snapshots=f"http://127.0.0.1:{ports['projector']}/snapshots/latest",
        )
        _banner(settings, ports, broker)
        while not stopping:
            for child, name in zip(children, ports, strict=True):
                if child.poll() is not None and not stopping:
                    print(
                        f"optout dev: the {name} exited with code {child.returncode}; stopping",
                        file=sys.stderr,
                    )
                    stopping = True
                    exit_code = child.returncode or 1
            time.sleep(0.2)
        return exit_code
    finally:
        stop_children(children, 45)
        remove_state(data)
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        print("optout dev: stopped", file=sys.stderr)


async def _prepare(settings: Settings, fresh_broker: bool) -> None:
    """Topics and migrations, waiting for a broker that is still coming up.

    A fresh embedded broker is memory-only: its change topic is new and empty, so the projector
    offsets that Postgres kept from the last run point past records it never saw. Forget them
    (the blocklist state itself stays: it is still true).
    """
    from worker.store.migrate import migrate
    from worker.store.postgres import forget_offsets
    from worker.stream.kafka import ensure_topics

    backoff = Backoff("Kafka", logging.getLogger("optout.dev"))
    deadline = time.monotonic() + 60
    while True:
        try:
            for line in await ensure_topics(settings, seconds=20):
                print(f"topic    {line}", file=sys.stderr)
            break
        except OptoutError as exc:  # a ConfigError (say, a non-compacted topic) is final
            if not exc.retriable or time.monotonic() > deadline:
                raise
            await backoff.failed(exc)
    for name in await migrate(settings.database_url):
        print(f"migrated {name}", file=sys.stderr)
    if fresh_broker and await forget_offsets(settings.database_url, settings.topic_changes):
        print(f"fresh broker: forgot the projector offsets of {settings.topic_changes}", file=sys.stderr)


def stop_children(children: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM every child still running, then wait for each (they finish their batch and commit);
    one that outlives ``timeout`` seconds is killed."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()


def _wait_until_serving(
    children: list[subprocess.Popen[bytes]],
    ports: dict[str, int],
    stopping: Callable[[], bool],
    seconds: float = 60.0,
) -> tuple[str, int] | None:
    """Wait until every worker answers on its HTTP port (it has started: settings read, rules
    loaded, port bound). The (name, exit code) of one that exited first, or None."""
    waiting = dict(zip(ports, children, strict=True))
    deadline = time.monotonic() + seconds
    while waiting and not stopping() and time.monotonic() < deadline:
        for name, child in list(waiting.items()):
            if child.poll() is not None:
                return name, child.returncode
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}/livez", timeout=1):
                    del waiting[name]
            except urllib.error.HTTPError as error:
                error.close()
                del waiting[name]  # it answers: started (whether or not it is live yet)
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    if waiting and not stopping():
        name = next(iter(waiting))
        return name, 1
    return None


def _pick_port(configured: int | None, preferred: int) -> int:
    if configured:
        return configured
    if configured is None and port_is_free(preferred):
        return preferred
    port = free_port()
    if configured is None:  # say so: commands and dashboards that assume the default would miss it
        print(f"optout dev: port {preferred} is in use; using {port} instead", file=sys.stderr)
    return port


def _banner(settings: Settings, ports: dict[str, int], broker: Broker | KafkaBroker | None) -> None:
    if isinstance(broker, KafkaBroker):
        where = f"embedded Apache Kafka, data in {broker.data_dir}"
    else:
        where = "embedded Tansu, memory-only" if broker else "external"
    if broker and not broker.bootstrap.endswith(f":{BROKER_PORT}"):
        where += f"; port {BROKER_PORT} was in use"
    lines = [
        "",
        "optout dev is running. Ctrl-C stops everything.",
        f"  Kafka bootstrap   {settings.kafka_bootstrap}  ({where})",
        f"  Postgres          {redact_url(settings.database_url)}",
        f"  classifier        http://127.0.0.1:{ports['classifier']}/metrics",
        f"  projector         http://127.0.0.1:{ports['projector']}/metrics",
        f"  topics            in {settings.topic_inbound} -> {settings.topic_changes} (compacted), "
        f"{settings.topic_replies}, {settings.topic_dead_letter}",
        f"  snapshots         {Path(settings.snapshot_dir).resolve()}  "
        f"(http://127.0.0.1:{ports['projector']}/snapshots/latest)",
        f"  data              {Path(settings.data_dir).resolve()}",
        "",
        f"Commands run from {Path.cwd()} find these servers in {state_path(settings.data_dir)}.",
        "",
        "Try it (another terminal):",
        f"  echo '{_EXAMPLE}' | OPTOUT_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} .venv/bin/optout produce",
        "  .venv/bin/optout check +15551230001 --account acme",
        "  .venv/bin/optout history +15551230001",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
