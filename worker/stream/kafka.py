"""Kafka clients built from :class:`Settings`, broker feature detection, and topic creation/verification.

Producers are idempotent where the broker supports it (Apache Kafka, MSK, Confluent, Redpanda) and
plain where it does not (Tansu answers InitProducerId with UNKNOWN_SERVER_ERROR): :func:`probe_features`
asks the broker once at start. The classifier's transactional producers are built by
:mod:`worker.stream.delivery`. Consumers read committed data only (``read_committed``): a broker
without transactions has no uncommitted data, and ignores the setting.

Every event also carries a deterministic id, so in at-least-once mode a batch produced twice after
a crash is de-duplicated by its consumers.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

from worker.config import Settings
from worker.errors import ConfigError, ServiceUnavailableError
from worker.logs import KAFKA, capture_security_failures
from worker.stream import frames, produce_request, records

TOPIC_EXISTS = 36


def client_kwargs(settings: Settings) -> dict[str, Any]:
    capture_security_failures()
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context for Kafka: the CA bundle, and a client certificate for mTLS.

    A file that is missing, unreadable or not PEM is a :class:`ConfigError` naming the setting and
    the path (never the key password), not a traceback from deep inside ``ssl``.
    """
    files = (
        ("OPTOUT_KAFKA_SSL_CAFILE", settings.ssl_cafile),
        ("OPTOUT_KAFKA_SSL_CERTFILE", settings.ssl_certfile),
        ("OPTOUT_KAFKA_SSL_KEYFILE", settings.ssl_keyfile),
    )
    for env, path in files:
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"{env} = {path}: cannot read: {exc.strerror}") from None
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"OPTOUT_KAFKA_SSL_CAFILE = {settings.ssl_cafile}: not a PEM CA bundle ({exc.reason or exc})"
        ) from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(
                settings.ssl_certfile,
                settings.ssl_keyfile or None,
                password=settings.ssl_key_password or None,
            )
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ConfigError(
                f"OPTOUT_KAFKA_SSL_CERTFILE = {settings.ssl_certfile}"
                + (f", OPTOUT_KAFKA_SSL_KEYFILE = {settings.ssl_keyfile}" if settings.ssl_keyfile else "")
                + f": cannot load the client certificate and key ({reason}; a wrong or missing "
                "OPTOUT_KAFKA_SSL_KEY_PASSWORD for an encrypted key reads the same)"
            ) from None
    return context


def unavailable(settings: Settings, exc: BaseException) -> ServiceUnavailableError:
    """The one-line error of a one-shot command that could not use Kafka: the authentication or TLS
    failure aiokafka logged if there was one (its exception only says "Unable to bootstrap")."""
    reason = KAFKA.take_security_failure()
    if reason is None:
        reason = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
    return ServiceUnavailableError(f"Kafka at {settings.kafka_bootstrap} is unavailable: {reason}")


def make_producer(settings: Settings, *, idempotent: bool = False, **overrides: Any) -> AIOKafkaProducer:
    """``idempotent`` only where :func:`probe_features` found the broker supports it."""
    produce_request.install()  # one copy of each record batch per request, not eight
    frames.install()  # one copy of each response, not four
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": idempotent,
        "linger_ms": 0,  # the loop hands over a whole batch at once: nothing to wait for
        "max_batch_size": settings.produce_batch_bytes,  # see worker.constants.PRODUCE_BATCH_BYTES
        "request_timeout_ms": 15000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**client_kwargs(settings), **options)


#: Errors that mean "the broker could not be reached", not "the broker said no": a probe retries them.
_UNREACHABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)


@dataclass(frozen=True, slots=True)
class BrokerFeatures:
    idempotence: bool
    transactions: bool
    detail: str
    """Why not, when a feature is missing: the broker's answer to InitProducerId."""
    group_fencing: bool = False
    """TxnOffsetCommit v3 and OffsetFetch v7 (KIP-447): one transactional producer per process is
    safe (:mod:`worker.stream.group_txn`)."""


async def probe_features(
    settings: Settings, *, transactions: bool = True, seconds: float = 30.0
) -> BrokerFeatures:
    """Ask the broker whether it has the idempotent and the transactional producer.

    Both start with InitProducerId (with a transactional id, after FindCoordinator for the
    transaction coordinator), so that is what is tried; ApiVersions is not enough, as Tansu lists
    InitProducerId and answers it with UNKNOWN_SERVER_ERROR. The transactional probe uses its own
    transactional id (``<group>.probe``), never one of the classifier's. A broker that cannot be
    reached raises :class:`ServiceUnavailableError`: the caller retries (worker) or exits (command).
    """
    idempotence, detail = await _try_producer(settings, seconds, enable_idempotence=True)
    if not idempotence or not transactions:
        return BrokerFeatures(idempotence, False, detail)
    has_tx, detail = await _try_producer(
        settings, seconds, transactional_id=f"{settings.group_id}.probe", transaction_timeout_ms=10000
    )
    if not has_tx:
        return BrokerFeatures(True, False, detail)
    return BrokerFeatures(True, True, detail, group_fencing=await _has_group_fencing(settings, seconds))


async def _has_group_fencing(settings: Settings, seconds: float) -> bool:
    """Whether the broker lists TxnOffsetCommit v3 and OffsetFetch v7 (ApiVersions)."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.admin import ApiVersionRequest

    from worker.stream.group_txn import supports_group_fencing

    client = AIOKafkaClient(**client_kwargs(settings))
    try:
        async with asyncio.timeout(seconds):
            await client.bootstrap()
            answer = await client.send(client.get_random_node(), ApiVersionRequest())
    except (*_UNREACHABLE, OSError, TimeoutError) as exc:
        raise unavailable(settings, exc) from None
    finally:
        await client.close()
    return supports_group_fencing({key: (low, high) for key, low, high in answer.api_versions})


async def _try_producer(settings: Settings, seconds: float, **options: Any) -> tuple[bool, str]:
    producer = make_producer(settings, **options)
    try:
        async with asyncio.timeout(seconds):
            await producer.start()
        return True, ""
    except (*_UNREACHABLE, OSError, TimeoutError) as exc:
        raise unavailable(settings, exc) from None
    except KafkaError as exc:
        if (reason := KAFKA.take_security_failure()) is not None:
            raise ServiceUnavailableError(f"Kafka at {settings.kafka_bootstrap}: {reason}") from None
        return False, f"InitProducerId answered {type(exc).__name__}"
    finally:
        await producer.stop()


def make_consumer(
    settings: Settings, group_id: str | None, *, raw_records: bool = False, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer with our defaults. ``raw_records``: ``getmany()`` returns the record batches' own
    records, without topic or partition (:mod:`worker.stream.records`): for loops that read only
    the offset, timestamp, key and value of each record."""
    frames.install()  # one copy of each fetch response, not four
    if raw_records:
        records.install()
        overrides = {"value_deserializer": records.RAW, **overrides}
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": max(1000, settings.session_timeout_ms // 3),
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "fetch_max_wait_ms": 100,
        "max_poll_interval_ms": 300000,
        # Only records of committed transactions (the classifier's exactly-once output); a broker
        # without transactions has nothing else, and Tansu accepts and ignores the setting.
        "isolation_level": "read_committed",
    }
    options.update(overrides)
    return AIOKafkaConsumer(**client_kwargs(settings), **options)


def topic_specs(settings: Settings) -> list[NewTopic]:
    configs = {"cleanup.policy": "compact"}
    rf, parts = settings.replication_factor, settings.partitions
    return [
        NewTopic(settings.topic_inbound, parts, rf),
        NewTopic(settings.topic_changes, parts, rf, topic_configs=configs),
        NewTopic(settings.topic_replies, parts, rf),
        NewTopic(settings.topic_dead_letter, parts, rf),
        NewTopic(settings.topic_review, parts, rf),
        NewTopic(settings.topic_webhook_dead_letter, parts, rf),
        *(NewTopic(topic, parts, rf) for topic, _ in settings.input_formats),
    ]


async def ensure_topics(settings: Settings, seconds: float = 30.0) -> list[str]:
    """Create missing topics and verify the change topic is compacted; idempotent.

    Returns one human-readable line per topic. A change topic that exists without
    ``cleanup.policy=compact`` is a :class:`ConfigError`: the snapshot and the send services'
    view rely on compaction keeping the latest state of every block. An unreachable broker is a
    :class:`ServiceUnavailableError`, so callers decide retry-or-exit from the class alone.
    """
    try:
        async with asyncio.timeout(seconds):
            return await _ensure_topics(settings)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise unavailable(settings, exc) from None


async def _ensure_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=15000)
    try:
        await admin.start()
        specs = topic_specs(settings)
        response = await admin.create_topics(specs)
        errors = {name: code for name, code, *_ in response.topic_errors}
        lines = []
        for spec in specs:
            code = errors.get(spec.name, 0)
            if code not in (0, TOPIC_EXISTS):
                raise ConfigError(f"cannot create topic {spec.name}: Kafka error code {code}")
            state = "created" if code == 0 else "exists"
            lines.append(f"{state:8} {spec.name}")
        policy = await _cleanup_policy(admin, settings.topic_changes)
        if "compact" not in policy.split(","):
            raise ConfigError(
                f"topic {settings.topic_changes} has cleanup.policy={policy!r}; it must be compact "
                f"(kafka-configs --alter --entity-type topics --entity-name {settings.topic_changes} "
                "--add-config cleanup.policy=compact)"
            )
        lines = [
            f"{line} (cleanup.policy={policy})" if line.endswith(settings.topic_changes) else line
            for line in lines
        ]
        return lines
    finally:
        await admin.close()


async def _cleanup_policy(admin: AIOKafkaAdminClient, topic: str, seconds: float = 10.0) -> str:
    """The topic's ``cleanup.policy`` as the broker reports it.

    Right after CreateTopics, Apache Kafka can answer DescribeConfigs with UNKNOWN_TOPIC_OR_PARTITION
    (error 3) and no entries: the broker that answers has not seen the new topic's metadata yet. Read
    as "no entry, so the default (delete)", that refused a topic we had just created compacted (9
    runs in 10 on a fresh broker). A resource error is therefore retried, never read as a value.
    """
    deadline = time.monotonic() + seconds
    while True:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]  # all configs: Tansu rejects a name filter
        )
        error = 0
        for response in responses:
            for code, message, _type, _name, entries, *_ in response.resources:
                if code:
                    error = code
                    detail = message
                    continue
                for entry in entries:
                    if entry[0] == "cleanup.policy":
                        return str(entry[1])
        if not error:
            return "delete"  # listed without the entry: the broker's default
        if time.monotonic() > deadline:
            raise ServiceUnavailableError(
                f"cannot read the configuration of topic {topic}: Kafka error code {error} ({detail})"
            )
        await asyncio.sleep(0.1)
