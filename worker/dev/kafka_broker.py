"""A real Apache Kafka broker for tests, benchmarks and the dev stack: one KRaft process, no Docker.

Tansu (the default dev broker) has no transactions, no idempotent producer and answers some requests
differently from Kafka; our users run Apache Kafka or something that behaves like it. This module
starts the genuine broker from Maven Central jars so the same tests can run on both.

What it does, and why this way:

- ``ensure_jars`` runs Maven once on ``deploy/kafka/pom.xml`` and copies the broker's jars into a cache
  outside the work tree (``~/.cache/optout/kafka-<version>/libs``); a marker holding the pom's hash
  makes every later call a file read, so tests never wait on Maven twice.
- ``KafkaBroker`` writes ``server.properties`` for one process that is both broker and controller
  (``process.roles=broker,controller``, a static one-voter quorum), formats the storage in the
  caller's directory (SCRAM users can only be created at format time in KRaft, so they are a
  constructor argument), starts ``kafka.Kafka`` in its own process group and waits until the
  broker answers a Metadata request naming itself, which happens only once it is unfenced and the
  controller is active, so topic creation works right after ``start()`` returns.
- ``make_tls`` writes a throwaway CA, a server and a client certificate with the ``openssl`` CLI (the
  ``cryptography`` package is not a dependency) as PEM files, which Kafka reads directly
  (``ssl.keystore.type=PEM``): no keytool, no JKS.

Stdlib only, so it can be imported by test helpers and scripts without the package's dependencies.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
"""The pinned Maven descriptor (a repository file: this module runs from a checkout, not a wheel)."""

NODE_ID = 1
SCRAM_MECHANISM = "SCRAM-SHA-512"
_MARKER = ".complete"


class KafkaBrokerError(RuntimeError):
    """The broker cannot be fetched, started or reached; the message is one line that says why."""


def default_cache_dir() -> Path:
    """Where jars are kept between runs: ``$XDG_CACHE_HOME/optout`` or ``~/.cache/optout``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optout"


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in ``pom`` (its ``<kafka.version>`` property)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if match is None:
        raise KafkaBrokerError(f"{pom} pins no <kafka.version>")
    return match.group(1)


def missing_tools(need_maven: bool = True) -> str | None:
    """One line naming what to install for the Apache Kafka broker, or None when nothing is missing.

    Tests call this to skip the Apache Kafka half with a reason instead of failing on a bare laptop.
    Maven is only needed while the jars are not cached yet.
    """
    if shutil.which("java") is None:
        return "`java` is not on PATH: install Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"
    if need_maven and shutil.which("mvn") is None:
        return "`mvn` is not on PATH: install Maven 3.8+ (e.g. apt-get install maven) to fetch the Kafka jars"
    return None


def cached_libs(pom: Path = POM, cache_dir: Path | None = None) -> Path | None:
    """The cached jar directory for ``pom`` if it is complete, else None (no Maven call)."""
    libs = (cache_dir or default_cache_dir()) / f"kafka-{kafka_version(pom)}" / "libs"
    marker = libs.parent / _MARKER
    if marker.is_file() and marker.read_text().strip() == _pom_hash(pom):
        return libs
    return None


def ensure_jars(pom: Path = POM, cache_dir: Path | None = None) -> Path:
    """The directory holding the broker's jars, running Maven first if they are not cached.

    The marker records the pom's hash: editing the pom (another log4j, another Kafka) fetches again
    instead of running with a stale mix. A file lock lets parallel test processes share one fetch.
    Maven keeps its own repository in ``~/.m2`` as usual, so a re-fetch is offline and quick.
    """
    if (libs := cached_libs(pom, cache_dir)) is not None:
        return libs
    home = (cache_dir or default_cache_dir()) / f"kafka-{kafka_version(pom)}"
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (libs := cached_libs(pom, cache_dir)) is not None:
            return libs  # another process fetched while we waited
        if (missing := missing_tools(need_maven=True)) is not None:
            raise KafkaBrokerError(f"cannot fetch the Apache Kafka jars: {missing}")
        libs = home / "libs"
        shutil.rmtree(libs, ignore_errors=True)
        (home / _MARKER).unlink(missing_ok=True)
        command = ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-Dkafka.libs={libs}"]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            lines = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
            raise KafkaBrokerError(
                f"mvn could not fetch the Kafka jars (exit {result.returncode}): "
                + (lines[0] if lines else "no error line; run it by hand: " + " ".join(command))
            )
        (home / _MARKER).write_text(_pom_hash(pom) + "\n")
        return libs


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for one test CA, the broker and one client, as written by ``make_tls``.

    ``server_keystore`` holds the broker's encrypted key and certificate in one file, which is what
    Kafka's PEM keystore reads; Kafka insists on a key password for a PEM keystore file, hence
    ``key_password``. The client files are unencrypted, as Python's ``ssl`` loads them.
    """

    ca_cert: Path
    server_keystore: Path
    key_password: str
    client_cert: Path
    client_key: Path


def make_tls(directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A fresh CA, a server certificate for ``hosts`` and a client certificate, via the openssl CLI.

    The server certificate names every host as a SAN (IPs as IP SANs), because clients check the
    host name against it (aiokafka's ``create_ssl_context`` does). The client certificate's subject
    is ``CN=optout-client``, the principal Kafka sees for mTLS.
    """
    if shutil.which("openssl") is None:
        raise KafkaBrokerError("`openssl` is not on PATH: install it (e.g. apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    password = base64.urlsafe_b64encode(os.urandom(12)).decode()

    def openssl(*args: str) -> None:
        result = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise KafkaBrokerError(f"openssl {args[0]} failed: {last}")

    sans = ",".join(f"IP:{host}" if _is_ip(host) else f"DNS:{host}" for host in hosts)
    days = "3650"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", days, "-subj", "/CN=optout-test-ca")  # fmt: skip
    for name, cn, extension in (
        ("server", "optout-broker", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"),
        ("client", "optout-client", "extendedKeyUsage=clientAuth\n"),
    ):
        (directory / f"{name}.ext").write_text(extension)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={cn}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", days, "-extfile", f"{name}.ext")  # fmt: skip
    # Kafka's PEM keystore file wants an encrypted PKCS#8 key followed by the certificate. The
    # cipher is PKCS#12's 3DES scheme: Java 17 cannot decrypt openssl's default (PBES2 with AES).
    openssl("pkcs8", "-topk8", "-in", "server.key", "-out", "server.enc.key", "-v1", "PBE-SHA1-3DES",
            "-passout", f"pass:{password}")  # fmt: skip
    keystore = directory / "server.keystore.pem"
    keystore.write_text((directory / "server.enc.key").read_text() + (directory / "server.pem").read_text())
    return TlsFiles(
        directory / "ca.pem", keystore, password, directory / "client.pem", directory / "client.key"
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class KafkaBroker:
    """One Apache Kafka process (broker and KRaft controller) whose data lives in ``data_dir``.

    Always a PLAINTEXT listener (``bootstrap``). ``scram_users`` (name → password) adds a SASL_SSL
    listener with SCRAM-SHA-512 (``sasl_ssl_bootstrap``); ``mtls`` adds an SSL listener that requires a
    client certificate (``ssl_bootstrap``). Both use ``tls`` (made by ``make_tls`` in
    ``data_dir/tls`` when not given). ``config`` overrides or adds ``server.properties`` entries;
    ``jvm_options`` are added to the broker's command line after ours (a benchmark may want another
    heap or GC).

    A ``data_dir`` that is already formatted is started as it is (a warm start: topics and offsets
    survive, and SCRAM users are those it was formatted with).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        scram_users: Mapping[str, str] | None = None,
        mtls: bool = False,
        tls: TlsFiles | None = None,
        config: Mapping[str, str] | None = None,
        heap: str = "512m",
        jvm_options: Sequence[str] = (),
        pom: Path = POM,
        cache_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.scram_users = dict(scram_users or {})
        self.mtls = mtls
        self.tls = tls
        self.config = dict(config or {})
        self.heap = heap
        self.jvm_options = list(jvm_options)
        self.pom = pom
        self.cache_dir = cache_dir
        self.log_path = self.data_dir / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.bootstrap = ""
        self.sasl_ssl_bootstrap: str | None = None
        self.ssl_bootstrap: str | None = None
        self._log_start = 0
        self.timings: dict[str, float] = {}
        """Seconds spent in the last ``start()``: ``jars``, ``tls`` and ``format`` (when done), ``ready``."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> KafkaBroker:
        """Fetch the jars if needed, format on first use, start, and return once clients can work."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.timings = {}
        began = time.monotonic()
        libs = ensure_jars(self.pom, self.cache_dir)
        self.timings["jars"] = time.monotonic() - began
        if (missing := missing_tools(need_maven=False)) is not None:
            raise KafkaBrokerError(missing)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_running()
        if (self.scram_users or self.mtls) and self.tls is None:
            began = time.monotonic()
            self.tls = make_tls(self.data_dir / "tls")
            self.timings["tls"] = time.monotonic() - began
        properties = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            began = time.monotonic()
            self._format(libs, properties)
            self.timings["format"] = time.monotonic() - began
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()  # errors are looked for in this run's lines only
            self.process = subprocess.Popen(
                [*self._java(libs, f"-Xmx{self.heap}", *self.jvm_options), "kafka.Kafka", str(properties)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                start_new_session=True,  # its own group: a terminal's Ctrl-C reaches us, not the JVM
            )
        self._pidfile.write_text(f"{self.process.pid}\n")
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self.timings["ready"] = time.monotonic() - began
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Kafka's clean shutdown: flushes, checkpoints), then SIGKILL after ``timeout``."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._signal(signal.SIGKILL)  # anything left in the group (the JVM forks nothing; belt and braces)
        self._pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker at once, as a crash would (for recovery tests and failed starts)."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._pidfile.unlink(missing_ok=True)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def rss_bytes(self) -> int:
        """The broker's resident memory now (Linux ``/proc``), for the benchmark report."""
        if self.process is None:
            return 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    # -- internals ---------------------------------------------------------------------------

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "broker.pid"

    def _refuse_if_running(self) -> None:
        """A second broker on the same directory must not start: before Kafka notices the lock on
        the data directory it has already opened and recovered the running broker's metadata log
        (in one trial that log then failed a CRC check on the next start). A parent killed with -9
        leaves its broker running (it has its own session), so this is not only a programming error."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self._pidfile.read_text())
            if str(self.data_dir / "server.properties").encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                raise KafkaBrokerError(
                    f"a Kafka broker (pid {pid}) already runs on {self.data_dir}: stop it first"
                )

    _G1 = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")

    def _java(self, libs: Path, *options: str) -> list[str]:
        log4j = self.data_dir / "log4j2.properties"
        if not log4j.exists():
            log4j.write_text(_LOG4J)
        return [
            "java",
            # Kafka's own choice (kafka-run-class.sh), unless the caller picks a collector.
            *([] if any(re.fullmatch(r"-XX:\+Use\w+GC", o) for o in options) else self._G1),
            "-XX:+ExitOnOutOfMemoryError",  # a dead broker fails a test clearly; a thrashing one hangs it
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-Dlog4j2.shutdownHookEnabled=false",  # else log4j stops first and the shutdown goes unlogged
            *options,  # last, so a caller's option overrides ours
            "-cp",
            f"{libs}/*",
        ]

    def _write_config(self) -> Path:
        self.port = self.port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        listeners = {"PLAINTEXT": self.port, "CONTROLLER": free_port()}
        if self.scram_users:
            listeners["SASL_SSL"] = free_port()
            self.sasl_ssl_bootstrap = f"127.0.0.1:{listeners['SASL_SSL']}"
        if self.mtls:
            listeners["SSL"] = free_port()
            self.ssl_bootstrap = f"127.0.0.1:{listeners['SSL']}"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{listeners['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items()),
            "advertised.listeners": ",".join(
                f"{name}://127.0.0.1:{port}" for name, port in listeners.items() if name != "CONTROLLER"
            ),
            "listener.security.protocol.map": ",".join(
                f"{name}:{'PLAINTEXT' if name == 'CONTROLLER' else name}" for name in listeners
            ),
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            # 50 partitions each by default: the first group or transaction would wait for 50 leaders.
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Compaction tests: the cleaner looks for dirty logs every 15 s by default.
            "log.cleaner.backoff.ms": "250",
            "log.segment.delete.delay.ms": "1000",
            # Topics are created on purpose (`optout topics`, the dev stack, the tests), as on the
            # clusters we run against: a misspelt topic name must be an error, not a new topic.
            "auto.create.topics.enable": "false",
        }
        if self.tls is not None and (self.scram_users or self.mtls):
            tls = {
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.tls.server_keystore),
                "ssl.key.password": self.tls.key_password,
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.tls.ca_cert),
            }
            for name in ("SASL_SSL", "SSL"):
                if name in listeners:
                    props.update({f"listener.name.{name.lower()}.{key}": value for key, value in tls.items()})
        if self.scram_users:
            props["sasl.enabled.mechanisms"] = SCRAM_MECHANISM
            props[f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        if self.mtls:
            props["listener.name.ssl.ssl.client.auth"] = "required"
        props.update(self.config)
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
        return path

    def _format(self, libs: Path, properties: Path) -> None:
        """``StorageTool format`` with a fresh cluster id; SCRAM users exist only if created here."""
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the tool's argument parser reads "-..." as an option
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        command = [*self._java(libs, "-Xmx256m"), "kafka.tools.StorageTool", "format"]
        command += ["--cluster-id", cluster_id, "--config", str(properties)]
        for name, password in self.scram_users.items():
            command += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            reason = _java_reason((result.stdout + result.stderr).splitlines())
            raise KafkaBrokerError(f"formatting {self.data_dir / 'logs'} failed: {reason}")

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KafkaBrokerError(
                    f"the Kafka broker exited with code {self.process.returncode}: {self._last_log_line()}"
                    f" (log: {self.log_path})"
                )
            with contextlib.suppress(OSError, struct.error):
                if NODE_ID in metadata_broker_ids("127.0.0.1", self.port):
                    return
            time.sleep(0.1)
        raise KafkaBrokerError(f"the Kafka broker was not ready within {timeout:.0f}s (log: {self.log_path})")

    def _last_log_line(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return _java_reason(log.read().decode(errors="replace").splitlines())
        except OSError:
            return "no log"

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)  # the group id is the child's pid (start_new_session)


def _java_reason(lines: list[str]) -> str:
    """The one line of a JVM's output that says why it failed: the innermost ``Caused by:``, else the
    first error or exception line (not the stack frames under it), else the last line."""
    causes = [line for line in lines if line.startswith("Caused by:")]
    errors = [
        line
        for line in lines
        if not line.startswith(("\t", " ")) and re.search(r"ERROR|Exception|Error", line)
    ]
    line = (causes[-1:] or errors[:1] or lines[-1:] or ["no output"])[0]
    if line.startswith("Error occurred during initialization of VM") and line != lines[-1]:
        line += ": " + lines[lines.index(line) + 1]  # the JVM says why on the next line
    elif line.startswith("Error: Could not create the Java Virtual Machine") and line != lines[0]:
        line = lines[lines.index(line) - 1] + f" ({line})"  # ... and the launcher on the line before
    return line.removeprefix('Exception in thread "main" ').strip()


def metadata_broker_ids(host: str, port: int, timeout: float = 2.0) -> list[int]:
    """The node ids a Kafka broker lists in a Metadata v4 response (no topics asked).

    Hand-rolled so the readiness check needs no client library. v4 is the newest version before
    the flexible encoding, so it is a few lines, and well inside what Kafka 4 answers (4.4 accepts
    v0 to v13; KIP-896 had planned to drop v0 to v3, which 4.0 restored for older clients).
    """
    client_id = b"optout-ready"
    request = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id  # Metadata, v4, correlation 1
    request += struct.pack(">ib", 0, 0)  # an empty topic list, allow_auto_topic_creation=false
    with socket.create_connection((host, port), timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        body = _recv_exact(sock, size)
    _correlation, _throttle, count = struct.unpack_from(">iii", body, 0)
    ids, offset = [], 12
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", body, offset)
        ids.append(node_id)
        (host_len,) = struct.unpack_from(">h", body, offset + 4)
        offset += 4 + 2 + host_len + 4  # node_id, host, port
        (rack_len,) = struct.unpack_from(">h", body, offset)
        offset += 2 + max(rack_len, 0)
    return ids


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed mid-response")
        data += chunk
    return bytes(data)


# Kafka logs through SLF4J to log4j2; everything goes to stdout, which start() sends to broker.log
# (so JVM errors such as a wrong Java version land in the same file).
_LOG4J = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def _main(argv: Sequence[str]) -> int:
    """``python -m worker.dev.kafka_broker --missing``: print what this machine lacks to run the
    Apache Kafka broker (one line), or nothing; the Makefile uses it to skip the Kafka test half."""
    if list(argv) != ["--missing"]:
        print("usage: python -m worker.dev.kafka_broker --missing")
        return 2
    try:
        cached = cached_libs() is not None
    except (OSError, KafkaBrokerError):
        cached = False
    missing = missing_tools(need_maven=not cached)
    if missing:
        print(missing)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
