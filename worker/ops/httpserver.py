"""The operator HTTP endpoint of each process: ``/metrics``, ``/healthz`` (liveness; ``/livez`` and
``/readyz`` come as routes from :mod:`worker.ops.health`).

A small WSGI app on prometheus-client's threaded server: scrapes and downloads run on their own
threads and never touch the event loop. ``routes`` adds paths; a route ending in ``/`` also serves
everything under it (the projector's ``/snapshots/``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class HttpServer:
    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def metrics_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_http(
    registry: CollectorRegistry,
    host: str,
    port: int,
    health: Callable[[], tuple[bool, bytes]],
    routes: dict[str, WSGIApp] | None = None,
) -> HttpServer:
    metrics = make_wsgi_app(registry)

    def healthz(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ok, body = health()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [body]

    table: dict[str, WSGIApp] = {"/metrics": metrics, "/healthz": healthz, **(routes or {})}
    prefixes = sorted(((path, app) for path, app in table.items() if path.endswith("/")), reverse=True)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        handler = table.get(path) or table.get(path + "/")
        if handler is None:
            handler = next((app for prefix, app in prefixes if path.startswith(prefix)), None)
        if handler is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; try /metrics, /livez or /readyz\n"]
        return handler(environ, start_response)

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="optout-http", daemon=True)
    thread.start()
    return HttpServer(server, thread, host)
