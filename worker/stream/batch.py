"""The classifier's batch step, pure: records in, records to produce and counts out.

The Kafka loop (:mod:`worker.stream.classifier`) calls :func:`classify_records` once per partition of a
``getmany()`` batch. The per-record path is kept flat on purpose: decode, resolve the rule set,
classify; a keyword MO is decided and encoded straight into dicts for orjson, and objects are
built only for records that failed.

A partition's records all come from one topic, so its input format is chosen once per call: the
canonical topic takes the flat loop above, a provider topic (``OPTOUT_INPUT_FORMATS``) the loop of
:func:`_classify_provider`, whose decoder may turn one record into several documents. A document
with ``intent`` (a provider's own signal) is decided from it, not from its text (:func:`_signal`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from worker.classify.confirmations import RecentChanges
from worker.classify.decide import Doubt, classify, decide_encoded
from worker.classify.rules import Match, Rule, RuleBook, RuleSet
from worker.errors import DeadLetterCode, InputError
from worker.events.address import metric_channel
from worker.events.inbound import canonical_instant, decode
from worker.events.outgoing import dead_letter_key, encode_dead_letter, encode_review
from worker.events.providers import CANONICAL, Decoder
from worker.events.providers.registry import DECODERS
from worker.model import Category, Intent, MatchMode, Source
from worker.stream.screen import screen_records


class RecordLike(Protocol):
    """What we read from a consumed record: aiokafka's ConsumerRecord has these attributes, and so
    has the record of a record batch the classifier takes whole (:mod:`worker.stream.records`),
    which has no topic or partition: those come with the partition's records (:class:`Where`)."""

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
    emitted_json: bytes = field(init=False, repr=False)
    """``emitted_at`` as JSON: encoded once per batch, joined into every keyword MO's records."""
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
    suppressed: dict[Intent, int] = field(default_factory=dict)
    """Replies not produced: repeated opt-outs within the confirmation window."""
    memory: RecentChanges | None = None
    """What the classifier knows of recent changes (one confirmation per opt-out); None: confirm all."""

    def __post_init__(self) -> None:
        self.emitted_json = orjson.dumps(self.emitted_at)
        if self.memory is not None:
            self.memory.begin_batch(int(time.time() * 1000))


class Where(Protocol):
    """The topic and partition of a batch's records (aiokafka's TopicPartition)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


def classify_records(
    tp: Where, records: Sequence[RecordLike], rulebook: RuleBook, out: BatchOutput, fmt: str = CANONICAL
) -> None:
    """Classify one partition's records (of ``tp``) in order, appending what they produce to ``out``.

    ``fmt`` is the input format of the records' topic (``OPTOUT_INPUT_FORMATS``; the inbound topic
    is canonical): chosen per call, so the canonical loop below pays nothing for the others.

    First the chat screen (:mod:`worker.stream.screen`) passes over, in C, the records that are
    surely valid chat. The hot loop then takes the others: each is decoded and fully validated
    (a bad one becomes a dead letter), its rule set resolved and its text classified; chat stops
    there, with nothing allocated beyond the decoded document. A keyword MO is decided and
    encoded in one pass (:func:`decide_encoded`), its records appended in input order, so per key
    the output keeps the order of the input. With ``out.memory`` (OPTOUT_CONFIRMATION_WINDOW > 0), a repeated
    opt-out's reply is dropped (:meth:`RecentChanges.confirm`): keyword MOs only.
    """
    if fmt != CANONICAL:
        _classify_provider(tp, records, rulebook, out, fmt, DECODERS[fmt])
        return
    screened = screen_records(records, rulebook)  # common-shape chat is passed over in C
    if screened is None:
        loud: Sequence[int] = range(len(records))
        docs: Sequence[dict[str, Any] | None] = [None] * len(records)
        last_chat = -1
    else:
        loud, docs, last_chat = screened
    resolve = rulebook.resolve
    uniform = rulebook.base if rulebook.uniform else None  # decided per batch, not per message
    intents = out.intents
    none = len(records) - len(loud)  # the screened chat
    instant: datetime | None = None
    last_good = -1
    doubts: list[Doubt] = []  # filled by classify only when it is unsure: the review queue
    for index, doc in zip(loud, docs, strict=True):
        record = records[index]
        if doc is None:  # not in the common shape: decoded and validated in full
            try:
                doc, instant = decode(record.value)
            except InputError as error:
                _dead_letter(tp, record, error, out)
                continue
        else:
            instant = None  # the screen checked the common form: parsed only when needed
        last_good = index
        rules = uniform or resolve(doc["account_id"], doc.get("subaccount_id"), doc["to"])
        if "intent" in doc:  # a producer's own signal: decided from it, the text is not read
            _signal(tp, record, doc, instant, rules, fmt, out)  # never screened: decoded in full
            continue
        match = classify(doc["text"], rules, doubts)
        if doubts:  # uncertain: classified as usual, and sent for review too
            _review(tp, record, doc, canonical_instant(doc["received_at"], instant), match, doubts, out)
            doubts.clear()
        if match is None:  # chat the screen could not pass over (or the screen was not built)
            none += 1
            continue
        # A keyword MO (a few per hundred records): decided and encoded as on every other path.
        _decide(tp, record, doc, doc["received_at"], match, rules, out, instant)
    out.consumed += len(records)
    if none:
        intents[Intent.NONE] = intents.get(Intent.NONE, 0) + none
    newest = max(last_good, last_chat)
    if newest >= 0:  # the delay metric: the partition's newest good record
        if newest != last_good or instant is None:
            instant = decode(records[newest].value)[1]  # once per partition batch
        out.newest_received[(tp.topic, tp.partition)] = instant.timestamp()


def _classify_provider(
    tp: Where, records: Sequence[RecordLike], rulebook: RuleBook, out: BatchOutput, fmt: str, decoder: Decoder
) -> None:
    """The loop for a provider topic: each record is decoded into zero or more canonical documents
    (an Infobip body holds several MOs), each handled like a canonical record's. A record the
    decoder refuses is dead-lettered whole, with its raw bytes."""
    accounts = rulebook.provider_accounts
    doubts: list[Doubt] = []
    received = None
    for record in records:
        try:
            decoded = decoder(record.value, record.timestamp, accounts)
        except InputError as error:
            _dead_letter(tp, record, error, out)
            continue
        for doc, received in decoded:
            rules = rulebook.resolve(doc["account_id"], doc.get("subaccount_id"), doc["to"])
            if "intent" in doc:
                _signal(tp, record, doc, received, rules, fmt, out)
                continue
            match = classify(doc["text"], rules, doubts)
            stamp = canonical_instant(doc["received_at"], received)
            if doubts:
                _review(tp, record, doc, stamp, match, doubts, out)
                doubts.clear()
            if match is None:
                out.intents[Intent.NONE] = out.intents.get(Intent.NONE, 0) + 1
                continue
            _decide(tp, record, doc, stamp, match, rules, out)
    out.consumed += len(records)
    if records and received is not None:
        out.newest_received[(tp.topic, tp.partition)] = received.timestamp()


def signal_match(intent: Intent, category: Category, keyword: str, fmt: str, rules: RuleSet) -> Match:
    """The match a provider's signal stands for: a rule named ``signal:<format>`` of that intent and
    category, at account level on the message's channel, whose keyword is what the subscriber chose
    (the button, the preference or the body, up to 64 characters) and whose reply is the rule set's
    reply for the intent (help: the HELP reply). A marketing signal gets none: those texts speak of
    every message ("no more messages from ..."), which a marketing opt-out is not."""
    if category is Category.MARKETING:
        rule = Rule(f"signal:{fmt}", intent, (keyword,), category=category, has_reply_override=True)
    else:
        rule = Rule(f"signal:{fmt}", intent, (keyword,), category=category)
    return Match(rule, keyword, MatchMode.EXACT, rules.languages[0])


def _signal(
    tp: Where,
    record: RecordLike,
    doc: dict[str, Any],
    received: Any,
    rules: RuleSet,
    fmt: str,
    out: BatchOutput,
) -> None:
    keyword = " ".join(doc["text"].split())[:64] or doc["intent"]
    category = Category(doc.get("category", Category.ALL))
    match = signal_match(Intent(doc["intent"]), category, keyword, fmt, rules)
    _decide(tp, record, doc, canonical_instant(doc["received_at"], received), match, rules, out)


def _decide(
    tp: Where,
    record: RecordLike,
    doc: dict[str, Any],
    stamp: str,
    match: Match,
    rules: RuleSet,
    out: BatchOutput,
    instant: datetime | None = None,
) -> None:
    """``stamp``: the MO's received time, canonical or as validated (``instant``: as decode parsed
    it, if it did); :func:`decide_encoded` makes it canonical."""
    memory = out.memory
    changes, replies = out.changes, out.replies
    first, reply_mark = len(changes), len(replies)
    where = (tp.topic, tp.partition, record.offset)
    parties = decide_encoded(doc, stamp, match, rules, where, out.emitted_json, changes, replies, instant)
    intent = match.rule.intent
    # One confirmation per opt-out (OPTOUT_CONFIRMATION_WINDOW > 0): help changes nothing.
    if (
        memory is not None
        and len(changes) > first
        and memory.confirm(changes, first, replies, reply_mark, intent is Intent.OPT_OUT)
    ):
        out.suppressed[intent] = out.suppressed.get(intent, 0) + 1
    if parties is not None and not parties.canonical:  # an email, a Messenger id, not a number
        label = metric_channel(parties.channel)
        out.uncanonical[label] = out.uncanonical.get(label, 0) + 1
    out.intents[intent] = out.intents.get(intent, 0) + 1


def _review(
    tp: Where,
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
                source=Source(tp.topic, tp.partition, record.offset, doc["message_id"]),
                occurred_at=received,
                emitted_at=out.emitted_at,
            ),
        )
    )


def _dead_letter(tp: Where, record: RecordLike, error: InputError, out: BatchOutput) -> None:
    out.dead_by_code[error.code] = out.dead_by_code.get(error.code, 0) + 1
    out.dead_letters.append(dead_letter(tp, record, error, "classifier", out.emitted_at, out.worker_version))


def dead_letter(
    tp: Where, record: RecordLike, error: InputError, stage: str, failed_at: str, worker_version: str
) -> tuple[bytes | None, bytes]:
    """The (key, value) of the dead letter for ``record`` of ``tp``: keyed like the record it replaces."""
    return dead_letter_key(record.key), encode_dead_letter(
        stage=stage,
        code=error.code,
        detail=error.detail,
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        failed_at=failed_at,
        worker_version=worker_version,
    )
