"""One configuration object, from flags and ``OPTOUT_*`` environment variables, validated at start.

Every setting is declared once in :data:`SETTINGS`; the CLI flags, the environment lookup, the
validation and the README's configuration table all come from that table, so they cannot drift.
Precedence: flag, then environment, then default. A wrong value raises :class:`ConfigError` with
one line naming the variable, the flag and what is expected.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from worker import constants
from worker.errors import ConfigError
from worker.events.providers import FORMAT_NAMES
from worker.stream.topics import Topics

if TYPE_CHECKING:
    from worker.classify.links import LinkSecret

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST_PORT = re.compile(r"^[^\s:,]+:\d{1,5}$")


def _topic(value: str) -> str:
    if not _TOPIC_NAME.match(value):
        raise ValueError("a Kafka topic name: 1-249 of letters, digits, '.', '_' or '-'")
    return value


def _group(value: str) -> str:
    if not value.strip():
        raise ValueError("a non-empty consumer group id")
    return value


def _bootstrap(value: str) -> str:
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    if not hosts or not all(_HOST_PORT.match(h) for h in hosts):
        raise ValueError("host:port[,host:port...]")
    return ",".join(hosts)


_PASSWORD_PARAM = re.compile(r"((?:^|&)(?:ssl)?password=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its passwords (``user:pw@`` and ``?password=``) as ``***``, for anything that
    may end up in a log or an error message."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
        shown = urlunsplit(parts._replace(query=_PASSWORD_PARAM.sub(r"\1***", parts.query)))
    except ValueError:
        return "<unparsable URL>"
    return _mask_userinfo(shown)


def _mask_userinfo(url: str) -> str:
    """A malformed URL ("postgresql//u:pw@h", "u:pw@h") hides its password from urlsplit: mask
    whatever follows the first ``:`` of the part before the last ``@``."""
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("//", 0, at)
    start = start + 2 if start >= 0 else 0
    colon = url.find(":", start, at)
    if colon < 0 or url[colon:at] == ":***":
        return url
    return f"{url[:colon]}:***{url[at:]}"


def _database_url(value: str) -> str:
    if value and not value.startswith(("postgres://", "postgresql://")):
        raise ValueError("a postgresql:// URL (or empty for the embedded Postgres)")
    return value


def _int(value: str, expected: str) -> int:
    """``int(value)``, or a ValueError that says what was expected (not Python's own message)."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(expected) from None


def _port(value: str) -> int:
    port = _int(value, "a TCP port 0-65535 (0 picks a free port)")
    if not 0 <= port <= 65535:
        raise ValueError("a TCP port 0-65535 (0 picks a free port)")
    return port


def _positive(value: str) -> int:
    number = _int(value, "a whole number >= 1")
    if number < 1:
        raise ValueError("a whole number >= 1")
    return number


def _auto_positive(value: str) -> int:
    """A whole number >= 1, or ``auto`` (0: the caller's default)."""
    if value.strip().lower() == "auto":
        return 0
    try:
        return _positive(value)
    except ValueError:
        raise ValueError("auto or a whole number >= 1") from None


def _whole_number(unit: str, low: int, high: int) -> Callable[[str], int]:
    """A parser of whole numbers of ``unit`` from ``low`` to ``high``, both included."""
    expected = f"a whole number of {unit} from {low} to {high}"

    def parse(value: str) -> int:
        number = _int(value, expected)
        if not low <= number <= high:
            raise ValueError(expected)
        return number

    return parse


_batch_bytes = _whole_number("bytes", 1024, constants.MAX_PRODUCE_BATCH_BYTES)
_transaction_interval = _whole_number("ms", 0, constants.MAX_TRANSACTION_INTERVAL_MS)


def _non_negative(value: str) -> int:
    number = _int(value, "a whole number >= 0")
    if number < 0:
        raise ValueError("a whole number >= 0")
    return number


def _seconds(value: str) -> int:
    number = _int(value, "a whole number of seconds >= 0")
    if number < 0:
        raise ValueError("a whole number of seconds >= 0")
    return number


#: The longest confirmation window: the classifier remembers about two windows of changes.
_MAX_WINDOW = 90 * 86400


def _window(value: str) -> int:
    expected = f"a whole number of seconds 0-{_MAX_WINDOW} (90 days); 0: confirm every opt-out"
    number = _int(value, expected)
    if not 0 <= number <= _MAX_WINDOW:
        raise ValueError(expected)
    return number


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError("requests per second, a number > 0 (e.g. 20 or 0.5)") from None
    if not 0 < rate < float("inf"):
        raise ValueError("requests per second, a number > 0 (e.g. 20 or 0.5)")
    return rate


def _rules(value: str) -> str:
    if value and not Path(value).is_file():
        raise ValueError(f"a readable rules file; {value} does not exist")
    return value


def _input_formats(value: str) -> tuple[tuple[str, str], ...]:
    """``topic=format[,topic=format]``: the extra topics the classifier reads, each in its format."""
    expected = f"topic=format[,topic=format...] with a format among {', '.join(FORMAT_NAMES)}"
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        topic, equals, fmt = (part.strip() for part in item.partition("="))
        if not equals or not _TOPIC_NAME.match(topic):
            raise ValueError(f"{expected}; {item!r} is not topic=format")
        if fmt not in FORMAT_NAMES:
            raise ValueError(f"{expected}; {fmt!r} (for {topic}) is not a format")
        if topic in (t for t, _ in pairs):
            raise ValueError(f"{expected}; topic {topic} is listed twice")
        pairs.append((topic, fmt))
    return tuple(pairs)


def _readable_file(what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value:
            return value
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{what}; {value} does not exist or is not a file")
        try:
            path.open("rb").close()
        except OSError as exc:
            raise ValueError(f"{what}; {value} cannot be read: {exc.strerror}") from None
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value

    return parse


def _link_secret(value: str) -> str:
    if value and len(value.encode()) < 32:
        raise ValueError("at least 32 bytes (e.g. `openssl rand -base64 32`), or empty: no opt-out links")
    return value


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment):
        raise ValueError("an http(s):// URL without query, e.g. https://u.example.com, or empty")
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class Setting:
    field: str
    env: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False
    """The whole value is a secret: shown as ``***`` in reprs and error messages."""
    redact: Callable[[str], str] | None = None
    """The value holds a secret (a URL's password): shown through this in reprs and error messages."""

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    def shown(self, value: object) -> str:
        """``value`` as logs and error messages may show it: secrets masked."""
        if self.secret:
            return "***" if value else "''"
        if self.redact is not None and isinstance(value, str):
            return repr(self.redact(value))
        return repr(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("kafka_bootstrap", "OPTOUT_KAFKA_BOOTSTRAP", constants.KAFKA_BOOTSTRAP, _bootstrap,
            "Kafka bootstrap servers, host:port[,host:port]"),
    Setting("database_url", "OPTOUT_DATABASE_URL", "", _database_url,
            "Postgres URL; empty: the running `optout dev`'s (from <data dir>/dev.json)", redact=redact_url),
    Setting("topic_inbound", "OPTOUT_TOPIC_INBOUND", constants.TOPIC_INBOUND, _topic,
            "inbound-message topic the classifier reads"),
    Setting("topic_changes", "OPTOUT_TOPIC_CHANGES", constants.TOPIC_CHANGES, _topic,
            "compacted blocklist-change topic"),
    Setting("topic_replies", "OPTOUT_TOPIC_REPLIES", constants.TOPIC_REPLIES, _topic,
            "reply-request topic (confirmations, HELP) for the send service"),
    Setting("topic_dead_letter", "OPTOUT_TOPIC_DEAD_LETTER", constants.TOPIC_DEAD_LETTER, _topic,
            "dead-letter topic for records that cannot be processed"),
    Setting("topic_review", "OPTOUT_TOPIC_REVIEW", constants.TOPIC_REVIEW, _topic,
            "review topic: messages the rules were unsure of, for a person to label"),
    Setting("input_formats", "OPTOUT_INPUT_FORMATS", "", _input_formats,
            "extra topics the classifier reads, each in a provider's format: topic=format[,...], formats "
            "canonical, eightbyeight, infobip, twilio, cmcom, whatsapp (README: Provider payloads); the "
            "inbound topic is always canonical"),
    Setting("group_id", "OPTOUT_GROUP_ID", constants.GROUP_CLASSIFIER, _group,
            "classifier consumer group"),
    Setting("projector_group_id", "OPTOUT_PROJECTOR_GROUP_ID", constants.GROUP_PROJECTOR, _group,
            "projector consumer group (offsets live in Postgres)"),
    Setting("rules", "OPTOUT_RULES", "", _rules,
            "rules file (JSON or TOML, schemas/rules.v1.json) layered on the built-in rules; empty: the "
            "built-in rules of all 7 language packs (en, es, fr, de, pt, it, nl)"),
    Setting("confirmation_window", "OPTOUT_CONFIRMATION_WINDOW", "86400", _window,
            "seconds during which a repeated opt-out of an active block gets no second confirmation "
            "(CTIA: one confirmation); 0: confirm every opt-out"),
    Setting("metrics_port", "OPTOUT_METRICS_PORT", "", lambda v: _port(v) if v else None,
            "port of /metrics; 0 picks a free one; empty: 9464 classifier, 9465 projector, 9466 dispatcher"),
    Setting("metrics_host", "OPTOUT_METRICS_HOST", "0.0.0.0", str,
            "address the HTTP server binds (/metrics, /livez, /readyz and the projector's /snapshots); "
            "127.0.0.1: this machine only"),
    Setting("snapshot_token", "OPTOUT_SNAPSHOT_TOKEN", "", str,
            "bearer token that GET /snapshots requires; empty: none (then keep the port private)",
            secret=True),
    Setting("snapshot_token_file", "OPTOUT_SNAPSHOT_TOKEN_FILE", "",
            _readable_file("a readable file holding the token"),
            "file holding that token (a mounted secret); instead of OPTOUT_SNAPSHOT_TOKEN"),
    Setting("data_dir", "OPTOUT_DATA_DIR", constants.DATA_DIR, Path,
            "local state of `optout dev`: embedded Postgres, broker log, dev.json"),
    Setting("snapshot_dir", "OPTOUT_SNAPSHOT_DIR", constants.SNAPSHOT_DIR, Path,
            "where the projector writes snapshots and send services read them"),
    Setting("snapshot_interval", "OPTOUT_SNAPSHOT_INTERVAL", str(constants.SNAPSHOT_INTERVAL), _seconds,
            "seconds between the projector's snapshots; 0: only `optout snapshot`"),
    Setting("snapshot_keep", "OPTOUT_SNAPSHOT_KEEP", str(constants.SNAPSHOT_KEEP), _positive,
            "snapshots kept; older ones are deleted after each new one"),
    Setting("partitions", "OPTOUT_PARTITIONS", "6", _positive,
            "partitions of topics created by `optout topics`"),
    Setting("replication_factor", "OPTOUT_REPLICATION_FACTOR", "1", _positive,
            "replication factor of topics created by `optout topics` (3 in production)"),
    Setting("batch_max_records", "OPTOUT_BATCH_MAX_RECORDS", "auto", _auto_positive,
            f"most records per batch; auto: {constants.MAX_BATCH_RECORDS} "
            f"({constants.MAX_TRANSACTION_BATCH_RECORDS} exactly-once)"),
    Setting("poll_timeout_ms", "OPTOUT_POLL_TIMEOUT_MS", str(constants.POLL_TIMEOUT_MS), _positive,
            "longest wait for a batch, in ms"),
    Setting("commit_interval_ms", "OPTOUT_COMMIT_INTERVAL_MS", str(constants.COMMIT_INTERVAL_MS),
            _non_negative, "at-least-once: commit acked offsets at most this often, in ms; 0: every batch"),
    Setting("txn_interval_ms", "OPTOUT_TRANSACTION_INTERVAL_MS",
            str(constants.TRANSACTION_INTERVAL_MS), _transaction_interval,
            "exactly-once: least time between a partition's transactions, in ms; 0: none"),
    Setting("fetch_min_bytes", "OPTOUT_FETCH_MIN_BYTES", str(constants.FETCH_MIN_BYTES), _positive,
            "wait for this many bytes: fewer, larger batches at a steady rate; 1: none"),
    Setting("fetch_max_wait_ms", "OPTOUT_FETCH_MAX_WAIT_MS", str(constants.FETCH_MAX_WAIT_MS), _positive,
            "but at most this long, in ms (an idle classifier fetches this often)"),
    Setting("produce_batch_bytes", "OPTOUT_PRODUCE_BATCH_BYTES", str(constants.PRODUCE_BATCH_BYTES),
            _batch_bytes, "largest record batch produced, in bytes; at most the topics' max.message.bytes"),
    Setting("session_timeout_ms", "OPTOUT_KAFKA_SESSION_TIMEOUT_MS", "10000", _positive,
            "consumer group session timeout, in ms"),
    Setting("burst_idle_ms", "OPTOUT_BURST_IDLE_MS", "2000", _positive,
            "with --burst: exit after the input has been idle this long, in ms"),
    Setting("security_protocol", "OPTOUT_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT",
            _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"), "Kafka security protocol"),
    Setting("sasl_mechanism", "OPTOUT_KAFKA_SASL_MECHANISM", "PLAIN",
            _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "Kafka SASL mechanism"),
    Setting("sasl_username", "OPTOUT_KAFKA_SASL_USERNAME", "", str, "Kafka SASL user name"),
    Setting("sasl_password", "OPTOUT_KAFKA_SASL_PASSWORD", "", str, "Kafka SASL password",
            secret=True),
    Setting("ssl_cafile", "OPTOUT_KAFKA_SSL_CAFILE", "", str,
            "CA bundle (PEM) for Kafka TLS; empty: the system's"),
    Setting("ssl_certfile", "OPTOUT_KAFKA_SSL_CERTFILE", "", str,
            "client certificate (PEM) for Kafka TLS client authentication (mTLS); empty: none"),
    Setting("ssl_keyfile", "OPTOUT_KAFKA_SSL_KEYFILE", "", str,
            "private key (PEM) of the client certificate; empty: in the certificate file"),
    Setting("ssl_key_password", "OPTOUT_KAFKA_SSL_KEY_PASSWORD", "", str,
            "password of an encrypted client key; empty: not encrypted", secret=True),
    Setting("delivery", "OPTOUT_DELIVERY", "auto", _choice("auto", "exactly-once", "at-least-once"),
            "classifier delivery: exactly-once (Kafka transactions), at-least-once (deterministic "
            "ids), or auto: exactly-once where the broker has transactions"),
    Setting("transactions", "OPTOUT_TRANSACTIONS", "auto", _choice("auto", "per-process", "per-partition"),
            "exactly-once: a transactional producer per process (KIP-447, Apache Kafka 2.5+) or "
            "per input partition; auto: per process where the broker can"),
    Setting("api_host", "OPTOUT_API_HOST", "0.0.0.0", str,
            "address `optout api` binds; 127.0.0.1: this machine only"),
    Setting("api_port", "OPTOUT_API_PORT", "8080", _port, "port of `optout api`; 0 picks a free one"),
    Setting("api_rate", "OPTOUT_API_RATE", "50", _rate,
            "requests per second each API token may make, per api process"),
    Setting("api_burst", "OPTOUT_API_BURST", "100", _positive,
            "requests an API token may make at once before OPTOUT_API_RATE applies"),
    Setting("webhook_group_id", "OPTOUT_WEBHOOK_GROUP_ID", constants.GROUP_WEBHOOKS, _group,
            "webhook dispatcher consumer group"),
    Setting("topic_webhook_dead_letter", "OPTOUT_TOPIC_WEBHOOK_DEAD_LETTER",
            constants.TOPIC_WEBHOOK_DEAD_LETTER, _topic,
            "topic of webhook deliveries given up"),
    Setting("webhook_max_attempts", "OPTOUT_WEBHOOK_MAX_ATTEMPTS", "8", _positive,
            "attempts before a delivery is dead-lettered"),
    Setting("webhook_timeout_ms", "OPTOUT_WEBHOOK_TIMEOUT_MS", "10000", _positive,
            "longest webhook request, in ms"),
    Setting("webhook_retry_initial_ms", "OPTOUT_WEBHOOK_RETRY_INITIAL_MS", "1000", _positive,
            "first retry's longest wait (doubles, full jitter), ms"),
    Setting("webhook_retry_max_ms", "OPTOUT_WEBHOOK_RETRY_MAX_MS", "60000", _positive,
            "longest retry wait, in ms"),
    Setting("webhook_concurrency", "OPTOUT_WEBHOOK_CONCURRENCY", "32", _positive,
            "webhook requests in flight at once"),
    Setting("webhook_refresh", "OPTOUT_WEBHOOK_REFRESH", "30", _positive,
            "most seconds between endpoint reloads (a removal takes effect within it)"),
    Setting("log_level", "OPTOUT_LOG_LEVEL", "INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"),
            "log level"),
    Setting("log_format", "OPTOUT_LOG_FORMAT", "text", _choice("text", "json"),
            "text: one readable line per event; json: one JSON object per line (time in UTC, level, "
            "logger, event, fields) for log collectors"),
    Setting("link_secret", "OPTOUT_LINK_SECRET", "", _link_secret,
            "HMAC-SHA256 key (32+ bytes) that signs and checks opt-out links; empty: no links",
            secret=True),
    Setting("link_base_url", "OPTOUT_LINK_BASE_URL", "", _base_url,
            "where /u/{token} is served, e.g. https://u.example.com: `optout link` prints this + /u/TOKEN"),
)  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    kafka_bootstrap: str
    database_url: str
    topic_inbound: str
    topic_changes: str
    topic_replies: str
    topic_dead_letter: str
    topic_review: str
    input_formats: tuple[tuple[str, str], ...]
    group_id: str
    projector_group_id: str
    rules: str
    confirmation_window: int
    metrics_port: int | None
    metrics_host: str
    snapshot_token: str
    snapshot_token_file: str
    data_dir: Path
    snapshot_dir: Path
    snapshot_interval: int
    snapshot_keep: int
    partitions: int
    replication_factor: int
    batch_max_records: int
    """OPTOUT_BATCH_MAX_RECORDS; 0 is auto: read it through :meth:`batch_records`."""
    poll_timeout_ms: int
    commit_interval_ms: int
    txn_interval_ms: int
    fetch_min_bytes: int
    fetch_max_wait_ms: int
    produce_batch_bytes: int
    session_timeout_ms: int
    burst_idle_ms: int
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str
    ssl_cafile: str
    ssl_certfile: str
    ssl_keyfile: str
    ssl_key_password: str
    delivery: str
    transactions: str
    api_host: str
    api_port: int
    api_rate: float
    api_burst: int
    webhook_group_id: str
    topic_webhook_dead_letter: str
    webhook_max_attempts: int
    webhook_timeout_ms: int
    webhook_retry_initial_ms: int
    webhook_retry_max_ms: int
    webhook_concurrency: int
    webhook_refresh: int
    log_level: str
    log_format: str
    link_secret: str
    link_base_url: str

    def __repr__(self) -> str:
        """Every setting, with the passwords (SASL, TLS key, database URL) masked."""
        shown = ", ".join(f"{s.field}={s.shown(getattr(self, s.field))}" for s in SETTINGS)
        return f"Settings({shown})"

    def batch_records(self, *, exactly_once: bool = False) -> int:
        """Most records per getmany() batch: OPTOUT_BATCH_MAX_RECORDS, or for ``auto`` the default
        of the loop (an exactly-once classifier's batches are bigger, see
        :data:`worker.constants.MAX_TRANSACTION_BATCH_RECORDS`)."""
        if self.batch_max_records:
            return self.batch_max_records
        return constants.MAX_TRANSACTION_BATCH_RECORDS if exactly_once else constants.MAX_BATCH_RECORDS

    @property
    def topics(self) -> Topics:
        return Topics(
            self.topic_inbound,
            self.topic_changes,
            self.topic_replies,
            self.topic_dead_letter,
            self.topic_review,
            inputs=self.input_formats,
        )

    @classmethod
    def from_mapping(cls, env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> Settings:
        """Build from environment-style ``env`` and CLI ``flags`` (field name -> raw value)."""
        flags = flags or {}
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = flags.get(setting.field)
            source = setting.flag
            if raw is None:
                raw, source = env.get(setting.env), setting.env
            if raw is None:
                raw, source = setting.default, "default"
            try:
                values[setting.field] = setting.parse(raw.strip())
            except ValueError as exc:
                shown = setting.shown(raw)
                raise ConfigError(
                    f"{setting.env} / {setting.flag} = {shown} (from {source}): expected {exc}"
                ) from None
        settings = cls(**values)
        settings._check_together()
        return settings

    def _check_together(self) -> None:
        names = [
            self.topic_inbound,
            self.topic_changes,
            self.topic_replies,
            self.topic_dead_letter,
            self.topic_review,
        ]
        if self.topic_webhook_dead_letter in [*names, *(t for t, _ in self.input_formats)]:
            raise ConfigError(
                f"OPTOUT_TOPIC_WEBHOOK_DEAD_LETTER={self.topic_webhook_dead_letter}: "
                "must differ from the other topics"
            )
        if self.webhook_retry_initial_ms > self.webhook_retry_max_ms:
            raise ConfigError(
                f"OPTOUT_WEBHOOK_RETRY_INITIAL_MS={self.webhook_retry_initial_ms} is above "
                f"OPTOUT_WEBHOOK_RETRY_MAX_MS={self.webhook_retry_max_ms}"
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"the five topics must be different, got {', '.join(names)}")
        for topic, fmt in self.input_formats:
            if topic in names:
                inbound = topic == self.topic_inbound
                role = "the inbound topic (always canonical)" if inbound else "an output topic"
                raise ConfigError(
                    f"OPTOUT_INPUT_FORMATS: {topic}={fmt}: {topic} is {role}; list extra input topics only"
                )
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise ConfigError(
                f"OPTOUT_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs OPTOUT_KAFKA_SASL_USERNAME"
            )
        if (self.ssl_keyfile or self.ssl_key_password) and not self.ssl_certfile:
            raise ConfigError(
                "OPTOUT_KAFKA_SSL_KEYFILE / OPTOUT_KAFKA_SSL_KEY_PASSWORD need OPTOUT_KAFKA_SSL_CERTFILE"
            )
        if self.security_protocol in ("SSL", "SASL_SSL"):
            for env, path in (
                ("OPTOUT_KAFKA_SSL_CAFILE", self.ssl_cafile),
                ("OPTOUT_KAFKA_SSL_CERTFILE", self.ssl_certfile),
                ("OPTOUT_KAFKA_SSL_KEYFILE", self.ssl_keyfile),
            ):
                if path and not os.access(path, os.R_OK):
                    problem = "does not exist" if not os.path.exists(path) else "is not readable"
                    raise ConfigError(f"{env}={path}: {problem}")
        tls_files = (self.ssl_cafile, self.ssl_certfile)
        if any(tls_files) and self.security_protocol not in ("SSL", "SASL_SSL"):
            raise ConfigError(
                "OPTOUT_KAFKA_SSL_CAFILE / OPTOUT_KAFKA_SSL_CERTFILE are set but "
                f"OPTOUT_KAFKA_SECURITY_PROTOCOL={self.security_protocol} does not use TLS (SSL or SASL_SSL)"
            )

    def snapshot_bearer_token(self) -> str | None:
        """The token ``/snapshots`` requires (from the file or the variable), or None."""
        if self.snapshot_token and self.snapshot_token_file:
            raise ConfigError("set OPTOUT_SNAPSHOT_TOKEN or OPTOUT_SNAPSHOT_TOKEN_FILE, not both")
        if not self.snapshot_token_file:
            return self.snapshot_token or None
        try:
            token = Path(self.snapshot_token_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"OPTOUT_SNAPSHOT_TOKEN_FILE={self.snapshot_token_file}: cannot read: {exc}"
            ) from None
        if not token:
            raise ConfigError(f"OPTOUT_SNAPSHOT_TOKEN_FILE={self.snapshot_token_file}: the file is empty")
        return token

    def link_signing_secret(self) -> LinkSecret:
        """The key of opt-out links; unset is one line naming the setting."""
        from worker.classify.links import LinkSecret

        if not self.link_secret:
            raise ConfigError(
                "OPTOUT_LINK_SECRET is not set: opt-out links need a key of 32+ bytes "
                "(e.g. `openssl rand -base64 32`), the same for `optout link` and the server"
            )
        return LinkSecret(self.link_secret.encode())

    def replace(self, **changes: Any) -> Settings:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)


#: Settings grouped for ``--help``, by the start of their variable name (after ``OPTOUT_``); the
#: first match wins, and a setting no prefix matches goes to "other settings".
HELP_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Kafka", ("KAFKA_",)),
    ("webhooks", ("WEBHOOK_", "TOPIC_WEBHOOK_")),
    (
        "topics and consumer groups",
        ("TOPIC_", "INPUT_", "GROUP_ID", "PROJECTOR_GROUP_ID", "PARTITIONS", "REPLICATION_"),
    ),
    ("Postgres", ("DATABASE_",)),
    ("HTTP: /metrics, /livez, /readyz, /snapshots", ("METRICS_", "SNAPSHOT_TOKEN")),
    ("snapshots", ("SNAPSHOT_",)),
    ("HTTP API (optout api)", ("API_",)),
    ("classification", ("RULES", "CONFIRMATION_")),
    ("delivery", ("DELIVERY", "TRANSACTIONS")),
    ("batching", ("BATCH_", "POLL_", "BURST_", "COMMIT_", "TRANSACTION_", "PRODUCE_")),
    ("the classifier's input fetches", ("FETCH_",)),
    ("logs and local state", ("LOG_", "DATA_DIR")),
    ("opt-out links", ("LINK_",)),
)


def help_group(setting: Setting) -> str:
    name = setting.env.removeprefix("OPTOUT_")
    return next((title for title, starts in HELP_GROUPS if name.startswith(starts)), "other settings")


def add_arguments(parser: argparse.ArgumentParser, shown: Sequence[str] | None = None) -> None:
    """One flag per setting, in titled groups; defaults stay None so the environment can fill them
    in. Only the groups in ``shown`` (None: all) appear in ``--help``; the others' flags are still
    accepted, so a script can pass the same flags to every command."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        title = help_group(setting)
        visible = shown is None or title in shown or title == "other settings"
        if visible and title not in groups:
            groups[title] = parser.add_argument_group(f"{title} (flag, or its OPTOUT_* variable)")
        target = groups[title] if visible else parser
        default = setting.default or "empty"
        target.add_argument(
            setting.flag,
            dest=setting.field,
            default=None,
            metavar="V",
            help=f"{setting.help} ({setting.env}, default {default})" if visible else argparse.SUPPRESS,
        )


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| Variable | Flag | Default | Meaning |", "| --- | --- | --- | --- |"]
    rows += [
        f"| `{s.env}` | `{s.flag}` | `{s.default}` | {s.help} |"
        if s.default
        else f"| `{s.env}` | `{s.flag}` | (empty) | {s.help} |"
        for s in SETTINGS
    ]
    return "\n".join(rows)


#: ``OPTOUT_*`` variables read outside :data:`SETTINGS` (not settings of a worker, but not typos).
#: OPTOUT_* variables read by something other than a setting: not typos, so no warning.
OTHER_VARIABLES: frozenset[str] = frozenset({"OPTOUT_TEST_BROKER", "OPTOUT_TEST_CHROMIUM"})  # the tests


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """One warning per ``OPTOUT_*`` variable that no setting reads (a typo is otherwise silently
    ignored), naming the closest known one."""
    import difflib

    known = {s.env for s in SETTINGS} | OTHER_VARIABLES
    warnings = []
    for name in sorted(n for n in env if n.startswith("OPTOUT_") and n not in known):
        # Compared without the shared prefix, which would make every name look alike.
        suffixes = {k.removeprefix("OPTOUT_"): k for k in known}
        close = difflib.get_close_matches(name.removeprefix("OPTOUT_"), sorted(suffixes), 1, 0.75)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        warnings.append(f"{name} is not an optout setting and is ignored{hint}")
    return warnings
