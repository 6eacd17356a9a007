"""The classifier's batch step, pure: records in, records to produce and counts out.

The Kafka loop (:mod:`worker.stream.classifier`) calls :func:`classify_records` once per partition of a
``getmany()`` batch. The per-record path is kept flat on purpose: decode, resolve the rule set,
classify; a keyword MO is decided and encoded straight into dicts for orjson, and objects are
built only for records that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.classify.decide import Doubt, classify, decide_encoded
from worker.classify.rules import Match, RuleBook
from worker.errors import DeadLetterCode, InputError
from worker.events.address import metric_channel
from worker.events.inbound import canonical_instant, decode
from worker.events.outgoing import dead_letter_key, encode_dead_letter, encode_review
from worker.model import Intent, Source


class RecordLike(Protocol):
    """What we read from a consumed record (aiokafka's ConsumerRecord has these attributes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(slots=True)
class BatchOutput:
    """Everything one batch produces, plus the counts the metrics need."""

    emitted_at: str
    worker_version: str
    changes: list[tuple[bytes, bytes]] = field(default_factory=list)
    replies: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    reviews: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Review requests: messages the rules were unsure of (keyed by account id)."""
    reviews_by_reason: dict[str, int] = field(default_factory=dict)
    uncanonical: dict[str, int] = field(default_factory=dict)
    """Keyword MOs whose subscriber address stayed as written (not E.164), by metric channel
    (:func:`worker.events.address.metric_channel`)."""
    consumed: int = 0
    intents: dict[Intent, int] = field(default_factory=dict)
    dead_by_code: dict[DeadLetterCode, int] = field(default_factory=dict)
    newest_received: dict[tuple[str, int], float] = field(default_factory=dict)
    """Per partition, the ``received_at`` (epoch seconds) of its last good record: delay metric."""


def classify_records(records: Sequence[RecordLike], rulebook: RuleBook, out: BatchOutput) -> None:
    """Classify one partition's records in order, appending what they produce to ``out``.

    The hot loop: every record is decoded and fully validated (a bad one becomes a dead letter),
    its rule set resolved and its text classified; chat stops there, with nothing allocated
    beyond the decoded document. A keyword MO is decided and encoded in one pass
    (:func:`decide_encoded`), its records appended in input order, so per key the output keeps
    the order of the input.
    """
    resolve = rulebook.resolve
    uniform = rulebook.base if rulebook.uniform else None  # decided per batch, not per message
    changes, replies, emitted_at, intents = out.changes, out.replies, out.emitted_at, out.intents
    none = 0
    received = None
    record = None
    doubts: list[Doubt] = []  # filled by classify only when it is unsure: the review queue
    for record in records:
        try:
            doc, received = decode(record.value)
        except InputError as error:
            _dead_letter(record, error, out)
            continue
        rules = uniform or resolve(doc["account_id"], doc.get("subaccount_id"), doc["to"])
        match = classify(doc["text"], rules, doubts)
        if doubts:  # uncertain: classified as usual, and sent for review too
            _review(record, doc, canonical_instant(doc["received_at"], received), match, doubts, out)
            doubts.clear()
        if match is None:  # chat: most records
            none += 1
            continue
        source = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "message_id": doc["message_id"],
        }
        stamp = canonical_instant(doc["received_at"], received)
        parties = decide_encoded(doc, stamp, match, rules, source, emitted_at, changes, replies)
        if parties is not None and not parties.canonical:  # an email, a Messenger id, not a number
            label = metric_channel(parties.channel)
            out.uncanonical[label] = out.uncanonical.get(label, 0) + 1
        intent = match.rule.intent
        intents[intent] = intents.get(intent, 0) + 1
    out.consumed += len(records)
    if none:
        intents[Intent.NONE] = intents.get(Intent.NONE, 0) + none
    if record is not None and received is not None:
        out.newest_received[(record.topic, record.partition)] = received.timestamp()


def _review(
    record: RecordLike,
    doc: dict[str, Any],
    received: str,
    match: Match | None,
    doubts: list[Doubt],
    out: BatchOutput,
) -> None:
    candidates = [
        {
            "reason": d.reason,
            "word": d.word,
            "intent": d.candidate.rule.intent.value,
            "rule": d.candidate.rule.name,
            "keyword": d.candidate.keyword,
            "language": d.candidate.language,
        }
        for d in doubts
    ]
    for doubt in doubts:
        out.reviews_by_reason[doubt.reason] = out.reviews_by_reason.get(doubt.reason, 0) + 1
    account = doc["account_id"]
    out.reviews.append(
        (
            account.encode(),
            encode_review(
                account_id=account,
                message_id=doc["message_id"],
                text=doc["text"],
                language=None if match is None else match.language,
                predicted=Intent.NONE.value if match is None else match.rule.intent.value,
                rule=None if match is None else match.rule.name,
                candidates=candidates,
                source=Source(record.topic, record.partition, record.offset, doc["message_id"]),
                occurred_at=received,
                emitted_at=out.emitted_at,
            ),
        )
    )


def _dead_letter(record: RecordLike, error: InputError, out: BatchOutput) -> None:
    out.dead_by_code[error.code] = out.dead_by_code.get(error.code, 0) + 1
    out.dead_letters.append(dead_letter(record, error, "classifier", out.emitted_at, out.worker_version))


def dead_letter(
    record: RecordLike, error: InputError, stage: str, failed_at: str, worker_version: str
) -> tuple[bytes | None, bytes]:
    """The (key, value) of the dead letter for ``record``: keyed like the record it replaces."""
    return dead_letter_key(record.key), encode_dead_letter(
        stage=stage,
        code=error.code,
        detail=error.detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        failed_at=failed_at,
        worker_version=worker_version,
    )
