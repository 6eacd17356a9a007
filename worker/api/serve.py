"""``optout api``: the app under uvicorn, until SIGTERM or SIGINT.

Order matters on the way in and out: Postgres and the broker are reached (and the port bound)
before the server starts, so a wrong setting ends the command with one line and nothing listens;
on a signal uvicorn stops accepting, lets the requests in flight finish (at most
:data:`GRACE_SECONDS`), and only then are the producer and the pool closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
from prometheus_client import CollectorRegistry

from worker.config import Settings
from worker.constants import METRICS_PORT_API
from worker.errors import ConfigError
from worker.heartbeat import HEARTBEAT
from worker.ops.health import Health
from worker.ops.httpserver import HttpServer, start_http
from worker.ops.metrics import register_process_metrics

log = logging.getLogger("optout.api")

#: Seconds requests in flight get to finish after SIGTERM.
GRACE_SECONDS = 30


class _Server(uvicorn.Server):
    """uvicorn's server without its signal re-raise: uvicorn ends a signalled shutdown by raising
    the signal again (killing the process with it), which would skip closing the producer and the
    pool and turn a clean SIGTERM into exit status 143."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line error blaming OPTOUT_API_HOST or OPTOUT_API_PORT."""
    import errno

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"OPTOUT_API_HOST={host}: cannot listen there: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        setting = "OPTOUT_API_HOST" if exc.errno == errno.EADDRNOTAVAIL else "OPTOUT_API_PORT"
        value = host if setting == "OPTOUT_API_HOST" else port
        raise ConfigError(
            f"{setting}={value}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.setblocking(False)
    return sock


async def run_api(settings: Settings, database_url: str) -> int:
    from worker.api.app import create_app
    from worker.classify.rulesfile import load_countries
    from worker.ops.manual import open_producer
    from worker.store.postgres import COMMAND_TIMEOUT, Store

    countries = load_countries(settings.rules or None)  # a bad rules file fails before any connection
    sock = bind(settings.api_host, settings.api_port)
    registry = CollectorRegistry()
    register_process_metrics(registry, role="api")
    metrics = _metrics_server(settings, registry)
    beating = asyncio.create_task(_beat())
    try:
        store = await Store.connect(
            database_url, min_size=1, max_size=10, command_timeout=COMMAND_TIMEOUT, reset_on_release=False
        )
        try:
            producer, _ = await open_producer(settings, None)
            try:
                app = create_app(store, producer, settings, countries=countries, registry=registry)
                config = uvicorn.Config(
                    app,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=GRACE_SECONDS,
                    server_header=False,
                )
                server = _Server(config)
                host, port = sock.getsockname()[:2]
                log.info("API on http://%s:%d (OpenAPI: /openapi.json)", host, port)
                await server.serve(sockets=[sock])
                log.info("API stopped: requests finished, closing the producer and the pool")
            finally:
                await producer.stop()
        finally:
            await store.close()
    finally:
        sock.close()
        beating.cancel()
        metrics.stop()
    return 0


def _metrics_server(settings: Settings, registry: CollectorRegistry) -> HttpServer:
    """``/metrics`` and ``/livez`` on OPTOUT_METRICS_PORT (9467 by default), as every worker serves
    them, so Prometheus and a probe find the API like the others (``/metrics`` on the API's own
    port stays too)."""
    port = METRICS_PORT_API if settings.metrics_port is None else settings.metrics_port
    health = Health(())
    try:
        http = start_http(registry, settings.metrics_host, port, health.liveness, health.routes())
    except OSError as exc:
        raise ConfigError(
            f"OPTOUT_METRICS_PORT={port}: cannot listen on {settings.metrics_host}:{port}: "
            f"{exc.strerror or exc}"
        ) from None
    log.info("metrics on %s", http.metrics_url)
    return http


async def _beat() -> None:
    """Liveness: the event loop turns (a stuck loop stops the heartbeat, and /livez says so)."""
    while True:
        HEARTBEAT.tick()
        await asyncio.sleep(1.0)
