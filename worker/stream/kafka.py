"""Kafka clients built from :class:`Settings`, and topic creation/verification.

The producer is deliberately neither idempotent nor transactional: Tansu (the dev broker) supports
neither, and we do not need them. Every event carries a deterministic id, so a batch produced
twice after a crash is de-duplicated by its consumers, and offsets are committed only after the
broker acknowledged everything derived from the records before them.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from worker.config import Settings
from worker.errors import ConfigError, ServiceUnavailableError

TOPIC_EXISTS = 36


def client_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    if settings.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    return kwargs


def make_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_kwargs(settings),
        acks="all",
        enable_idempotence=False,
        linger_ms=0,  # the loop already hands over a whole batch, then waits for its acks
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


def make_consumer(settings: Settings, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
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
        detail = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
        raise ServiceUnavailableError(
            f"Kafka at {settings.kafka_bootstrap} is unavailable: {detail}"
        ) from None


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
