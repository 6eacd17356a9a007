"""Prometheus metrics (prefix ``optout_``, base units, ``_total`` counters).

Each process owns a registry, so the classifier and the projector each expose only their own
series. Counters are bumped once per batch with the batch's totals, never per message: a
``Counter.inc`` takes a lock, and the hot loop handles hundreds of thousands of records a second.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from worker.constants import REVIEW_REASONS
from worker.errors import DeadLetterCode
from worker.events.address import OTHER_CHANNEL, PHONE_CHANNELS
from worker.model import Intent

_BATCH_SIZES = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELAYS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class _Common:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lag = Gauge(
            "optout_consumer_lag_records",
            "Records between the consumer position and the partition's high watermark.",
            ["topic", "partition"],
            registry=registry,
        )
        self.rebalances = Counter(
            "optout_rebalances_total",
            "Consumer group rebalances seen, by event (assigned or revoked).",
            ["event"],
            registry=registry,
        )
        self.retries = Counter(
            "optout_service_retries_total",
            "Failed attempts to reach a service that were retried with backoff.",
            ["service"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "optout_records_dead_lettered_total",
            "Records sent to the dead-letter topic, by error code.",
            ["code"],
            registry=registry,
        )
        for code in DeadLetterCode:
            self.dead_lettered.labels(code.value)
        for event in ("assigned", "revoked"):
            self.rebalances.labels(event)


class ClassifierMetrics(_Common):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.consumed = Counter(
            "optout_records_consumed_total", "Inbound records consumed.", registry=registry
        )
        self.classified = Counter(
            "optout_records_classified_total",
            "Inbound records classified, by intent.",
            ["intent"],
            registry=registry,
        )
        for intent in Intent:
            self.classified.labels(intent.value)
        self.changes = Counter(
            "optout_changes_produced_total", "Blocklist change events produced.", registry=registry
        )
        self.replies = Counter("optout_replies_produced_total", "Reply requests produced.", registry=registry)
        self.reviews = Counter(
            "optout_reviews_produced_total",
            "Review requests produced (messages the rules were unsure of), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REVIEW_REASONS:
            self.reviews.labels(reason)
        self.uncanonical = Counter(
            "optout_addresses_uncanonical_total",
            "Subscriber addresses of keyword MOs kept as written (not E.164: an email, a Messenger "
            "id, a number phonenumbers cannot read), by channel (a phone channel, or 'other').",
            ["channel"],
            registry=registry,
        )
        for channel in (*sorted(PHONE_CHANNELS), OTHER_CHANNEL):
            self.uncanonical.labels(channel)
        self.batch_records = Histogram(
            "optout_batch_records", "Records per batch.", buckets=_BATCH_SIZES, registry=registry
        )
        self.batch_duration = Histogram(
            "optout_batch_duration_seconds",
            "Wall time of one batch: classify, produce, broker acknowledgement, commit.",
            buckets=_SECONDS,
            registry=registry,
        )
        self.delay = Histogram(
            "optout_end_to_end_delay_seconds",
            "Now minus the message's received_at when its batch is committed "
            "(sampled: the newest record of each partition in each batch).",
            buckets=_DELAYS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "optout_commit_failures_total",
            "Offset commits refused after a rebalance; the batch will be reprocessed (ids dedupe).",
            registry=registry,
        )
        self._confirmations_and_rules(registry)

    def _confirmations_and_rules(self, registry: CollectorRegistry) -> None:
        """One confirmation per opt-out (OPTOUT_CONFIRMATION_WINDOW) and rules-file reloads."""
        self.replies_suppressed = Counter(
            "optout_replies_suppressed_total",
            "Confirmations not sent: a repeated opt-out of an active block within the window, by intent.",
            ["intent"],
            registry=registry,
        )
        self.replies_suppressed.labels(Intent.OPT_OUT.value)
        self.recent_changes = Gauge(
            "optout_confirmation_known_blocks",
            "Block identities whose recent changes the classifier holds (one confirmation per opt-out).",
            registry=registry,
        )
        self.rules_reloads = Counter(
            "optout_rules_reloads_total",
            "Rules-file reloads (SIGHUP or the file changed), by result: ok, or rejected (old rules kept).",
            ["result"],
            registry=registry,
        )
        for result in ("ok", "rejected"):
            self.rules_reloads.labels(result)
        self.rules_info = Gauge(
            "optout_rules_info",
            "Always 1: the sha256 prefix of the rules file in use (builtin: none).",
            ["sha256"],
            registry=registry,
        )
        self.rules_loaded = Gauge(
            "optout_rules_loaded_timestamp_seconds",
            "Unix time the rules in use were loaded (at start or by the last successful reload).",
            registry=registry,
        )


class ProjectorMetrics(_Common):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.consumed = Counter("optout_changes_consumed_total", "Change events consumed.", registry=registry)
        self.rows = Counter(
            "optout_projector_rows_applied_total",
            "Rows written by the projector, by table (history inserted, state changed).",
            ["table"],
            registry=registry,
        )
        for table in ("history", "state"):
            self.rows.labels(table)
        self.transaction = Histogram(
            "optout_projector_transaction_duration_seconds",
            "Wall time of one Postgres transaction (history, state and offsets).",
            buckets=_SECONDS,
            registry=registry,
        )
        self.batch_records = Histogram(
            "optout_batch_records", "Records per batch.", buckets=_BATCH_SIZES, registry=registry
        )
        self.snapshot_written = Gauge(
            "optout_snapshot_last_success_timestamp_seconds",
            "Unix time of the last snapshot written (alert when older than two intervals).",
            registry=registry,
        )
        self.snapshot_duration = Gauge(
            "optout_snapshot_duration_seconds", "Wall time of the last snapshot.", registry=registry
        )
        self.snapshot_entries = Gauge(
            "optout_snapshot_entries", "Active blocks in the last snapshot.", registry=registry
        )
        self.snapshot_failures = Counter(
            "optout_snapshot_failures_total", "Snapshots that failed (retried sooner).", registry=registry
        )


#: Webhook request durations: a receiver answers in milliseconds to seconds (the timeout is 10 s).
_WEBHOOK_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class DispatcherMetrics(_Common):
    """The webhook dispatcher's series; ``endpoint`` is the endpoint's id, never its URL (which can
    carry a receiver's token, and would make a series per URL change)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.consumed = Counter("optout_changes_consumed_total", "Change events consumed.", registry=registry)
        self.deliveries = Counter(
            "optout_webhook_deliveries_total",
            "Webhook deliveries finished, by endpoint and outcome (delivered or dead_lettered).",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.failed_attempts = Counter(
            "optout_webhook_failed_attempts_total",
            "Webhook requests that failed, by endpoint and kind (timeout, connection, http_4xx, http_5xx).",
            ["endpoint", "kind"],
            registry=registry,
        )
        self.webhook_retries = Counter(
            "optout_webhook_retries_total",
            "Webhook requests retried after a failure, by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        self.latency = Histogram(
            "optout_webhook_request_duration_seconds",
            "Duration of webhook requests (to the response status), by endpoint, failures included.",
            ["endpoint"],
            buckets=_WEBHOOK_SECONDS,
            registry=registry,
        )
        self.endpoints = Gauge(
            "optout_webhook_endpoints", "Webhook endpoints enabled, as last loaded.", registry=registry
        )


def register_process_metrics(registry: CollectorRegistry, role: str) -> None:
    """What every process exposes besides its own counters: ``optout_build_info`` (always 1; its
    labels say which version and role run, and its absence that none does: the
    OptoutWorkerAbsent alert) and the standard ``process_*`` and ``python_info`` collectors
    (CPU, resident memory, open file descriptors, start time)."""
    import platform

    from prometheus_client import PlatformCollector, ProcessCollector

    from worker import __version__

    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    info = Gauge(
        "optout_build_info",
        "Always 1: the running version and role (classifier or projector).",
        ["version", "role", "python"],
        registry=registry,
    )
    info.labels(__version__, role, platform.python_version()).set(1)
