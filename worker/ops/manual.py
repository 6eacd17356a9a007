"""``optout block``, ``optout unblock`` and ``optout import``: changes that are not an MO.

They produce change events (reason ``manual`` or ``import``, no source record, the operator's note)
to the change topic, keyed by the block identity, as the classifier does: the projector stores
them, the snapshots carry them and every send service's ``BlocklistView`` applies them. The events
are built by :mod:`worker.classify.manual` (pure); this module reads the file, produces and reports.

An import is all or nothing per line: a line is either valid and produced, or reported with its
line number and skipped. Where the broker has transactions (Apache Kafka, MSK, Confluent, Redpanda)
the whole import is one transaction: a crash half-way leaves nothing visible to the readers
(``read_committed``). Where it has none (Tansu) the changes are produced in acknowledged chunks; a
crash half-way leaves the chunks produced so far, and running the same import again produces the
same event ids (derived from the file's sha256, the line and the block identity), which the
projector and the views drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from worker.classify.manual import (
    ManualChange,
    ManualChangeError,
    canonical_instant,
    imported_event,
    manual_change,
    manual_event,
)
from worker.classify.rulesfile import load_countries
from worker.config import Settings
from worker.constants import MAX_NOTE_CHARS
from worker.errors import ConfigError, OutputRefusedError, ServiceUnavailableError
from worker.events.address import Countries
from worker.events.inbound import format_instant
from worker.events.outgoing import encode_change
from worker.model import Action
from worker.ops.imports import BadLine, ImportFileError, ImportFormat, Reader, detect_format
from worker.stream.produce import Record

#: Exit code of an import that skipped bad lines and produced the rest (1 is an outage, 2 a usage
#: error, as for every one-shot command).
EXIT_LINES_SKIPPED = 3
#: Changes per acknowledged produce (and progress step).
CHUNK = 5000
#: An import's transaction may take at most this long: Apache Kafka's default
#: transaction.max.timeout.ms.
MAX_TRANSACTION_TIMEOUT_MS = 900_000


def transaction_timeout_ms(lines: int) -> int:
    """How long the broker lets an import's transaction stay open: one minute plus a second per
    5,000 lines (ten times slower than measured), at most 15 minutes.

    Not simply the maximum: an import that dies half-way leaves its transaction open, and until the
    broker aborts it, ``read_committed`` readers of the change topic (the projector, the views) do
    not get past it on the partitions it wrote to, so later changes wait too. Running the same
    import again aborts it at once (its producer has the same transactional id).
    """
    return min(MAX_TRANSACTION_TIMEOUT_MS, 60_000 + lines // 5)


#: Bad lines kept for the report; the rest are counted.
MAX_REPORTED = 1000


def now_instant() -> str:
    return format_instant(datetime.now(UTC))


def change_from_args(action: Action, args: object, countries: Countries | None = None) -> ManualChange:
    """The change ``optout block|unblock ADDRESS --account ...`` asks for; a bad value is a
    :class:`ConfigError` naming its flag."""
    fields = {
        "action": action.value,
        "address": getattr(args, "address", None),
        "account": getattr(args, "account", None),
        "subaccount": getattr(args, "subaccount", None),
        "sender": getattr(args, "sender", None),
        "channel": getattr(args, "channel", None),
        "category": getattr(args, "category", None),
        "note": getattr(args, "note", None),
    }
    if not (fields["note"] or "").strip():
        raise ConfigError("--note is empty: say why, for the history (who asked, the ticket)")
    try:
        return manual_change(fields, countries or Countries())
    except ManualChangeError as exc:
        message = str(exc)
        name, _, problem = message.partition(" ")
        flag = "ADDRESS" if name == "address" else f"--{name}"
        if problem == "is missing":
            problem = "is empty"
        raise ConfigError(f"{flag} {problem}") from None


def instant_from_args(at: str | None) -> str:
    """``--at`` as canonical UTC, or now."""
    if at is None:
        return now_instant()
    try:
        return canonical_instant(at, "--at")
    except ManualChangeError as exc:
        raise ConfigError(str(exc)) from None


def run_block(settings: Settings, change: ManualChange, occurred_at: str, dry_run: bool) -> int:
    """Produce one manual change and print it (the encoded event, one JSON line) on stdout."""
    key, event = manual_event(change, occurred_at)
    value = encode_change(event, now_instant())
    if not dry_run:
        asyncio.run(_produce_one(settings, key, value))
    sys.stdout.buffer.write(value + b"\n")
    done = "would be produced (dry run)" if dry_run else f"produced to {settings.topic_changes}"
    print(f"{event.action.value} of {event.address} {done}", file=sys.stderr)
    return 0


async def _produce_one(settings: Settings, key: bytes, value: bytes) -> None:
    producer, _ = await open_producer(settings, None)
    try:
        await send_acknowledged(producer, [(settings.topic_changes, key, value)], settings)
    finally:
        await producer.stop()


async def open_producer(
    settings: Settings, transactional_id: str | None, timeout_ms: int = MAX_TRANSACTION_TIMEOUT_MS
) -> tuple[AIOKafkaProducer, bool]:
    """A started producer for the change topic: transactional when ``transactional_id`` is given
    and the broker has transactions (then True), else idempotent where it can be, else plain.

    The topic must exist: producing to a missing one would make a broker with auto-creation create
    it with the default cleanup policy (not compacted), which nothing would notice.
    """
    from worker.ops.tail import topic_exists
    from worker.stream.kafka import make_producer, probe_features, unavailable

    try:
        exists = await asyncio.wait_for(topic_exists(settings, settings.topic_changes), 30)
    except Exception as exc:
        raise unavailable(settings, exc) from None
    if not exists:
        raise ConfigError(
            f"topic {settings.topic_changes} does not exist at {settings.kafka_bootstrap}: create it "
            "with `optout topics` (or set OPTOUT_TOPIC_CHANGES)"
        )
    features = await probe_features(settings, transactions=transactional_id is not None)
    transactional = transactional_id is not None and features.transactions
    if transactional:
        producer = make_producer(
            settings,
            transactional_id=transactional_id,
            enable_idempotence=True,
            transaction_timeout_ms=timeout_ms,
        )
    else:
        producer = make_producer(settings, idempotent=features.idempotence)
    try:
        await asyncio.wait_for(producer.start(), 30)
    except Exception as exc:
        await producer.stop()
        raise unavailable(settings, exc) from None
    return producer, transactional


async def send_acknowledged(producer: AIOKafkaProducer, records: list[Record], settings: Settings) -> None:
    """Send and wait for every acknowledgement; a failure is one line (refused for good, or down)."""
    from worker.stream.loop import REFUSED_FOR_GOOD
    from worker.stream.produce import send_batches

    failure = await send_batches(producer, records)
    if failure is None:
        return
    topic, exc = failure
    if isinstance(exc, REFUSED_FOR_GOOD):
        raise OutputRefusedError(f"Kafka refused a change for {topic}: {type(exc).__name__}: {exc}")
    raise ServiceUnavailableError(f"Kafka at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}")


@dataclass
class ImportPlan:
    """What an import will do, decided before any line is read."""

    path: Path
    kind: ImportFormat
    sha256: str
    lines: int
    occurred_at: str
    occurred_at_from: str
    note: str


@dataclass
class ImportResult:
    produced: int = 0
    blocks: int = 0
    unblocks: int = 0
    skipped: int = 0
    bad: list[BadLine] = field(default_factory=list)
    ignored: set[str] = field(default_factory=set)
    transactional: bool = False


def plan_import(path: str, kind: str | None, at: str | None, note: str | None) -> ImportPlan:
    """Hash and count the file, choose its format, the instant and the note (one-line errors)."""
    file = Path(path)
    digest = hashlib.sha256()
    lines = 0
    head = b""
    try:
        with file.open("rb") as raw:
            while chunk := raw.read(1 << 20):
                if not head:
                    head = chunk[:4096]
                digest.update(chunk)
                lines += chunk.count(b"\n")
            if head and not head.endswith(b"\n") and lines == 0:
                lines = 1
        mtime = file.stat().st_mtime
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    chosen = ImportFormat(kind) if kind else detect_format(file.name, head.decode("utf-8", "replace"))
    if at is not None:
        occurred_at, source = instant_from_args(at), "--at"
    else:
        occurred_at = format_instant(datetime.fromtimestamp(mtime, UTC))
        source = "the file's modification time"
    try:
        with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            Reader(chosen).check_header(handle)
    except ImportFileError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    text = file.name if note is None else note
    if len(text) > MAX_NOTE_CHARS or "\x00" in text:
        raise ConfigError(f"--note: at most {MAX_NOTE_CHARS} characters, no NUL")
    return ImportPlan(file, chosen, digest.hexdigest(), lines, occurred_at, source, text)


def transactional_id(settings: Settings, plan: ImportPlan) -> str:
    """One per file content: two runs of the same import fence each other (the older one's open
    transaction is aborted), imports of different files do not."""
    return f"{settings.group_id}.import.{plan.sha256[:16]}"


def run_import(settings: Settings, plan: ImportPlan, dry_run: bool, err: IO[str] | None = None) -> int:
    out = err if err is not None else sys.stderr
    progress = Progress(out, plan.lines)
    print(
        f"import {plan.path} ({plan.kind.value}, {plan.lines:,} lines, sha256 {plan.sha256[:12]}…): "
        f"occurred_at {plan.occurred_at} ({plan.occurred_at_from}), note {plan.note!r}",
        file=out,
    )
    result = asyncio.run(_import(settings, plan, dry_run, progress))
    progress.finish()
    for bad in result.bad:
        print(f"{plan.path}:{bad.line}: {bad.problem}", file=out)
    if result.skipped > len(result.bad):
        print(f"... and {result.skipped - len(result.bad):,} more bad lines", file=out)
    if result.ignored:
        print(f"ignored (unknown) columns: {', '.join(sorted(result.ignored))}", file=out)
    counts = f"{result.produced:,} changes ({result.blocks:,} block, {result.unblocks:,} unblock)"
    if dry_run:
        print(f"dry run: {counts} would be produced to {settings.topic_changes}", file=out)
    else:
        how = "in one transaction" if result.transactional else "each acknowledged"
        print(f"produced {counts} to {settings.topic_changes} {how}", file=out)
    if result.skipped:
        shown = ", ".join(str(bad.line) for bad in result.bad[:20])
        more = ", …" if result.skipped > 20 else ""
        lines = "line" if result.skipped == 1 else "lines"
        print(
            f"{result.skipped:,} {lines} skipped ({lines} {shown}{more}); exit {EXIT_LINES_SKIPPED}", file=out
        )
        return EXIT_LINES_SKIPPED
    return 0


async def _import(settings: Settings, plan: ImportPlan, dry_run: bool, progress: Progress) -> ImportResult:
    result = ImportResult()
    if dry_run:
        await _read_and_send(settings, plan, None, result, progress)
        return result
    producer, result.transactional = await open_producer(
        settings, transactional_id(settings, plan), transaction_timeout_ms(plan.lines)
    )
    try:
        if result.transactional:
            await producer.begin_transaction()
        send = lambda records: send_acknowledged(producer, records, settings)  # noqa: E731
        await _read_and_send(settings, plan, send, result, progress)
        if result.transactional:
            await producer.commit_transaction()
    except (KafkaError, OSError, TimeoutError) as exc:  # begin, commit: aiokafka's own errors
        await _abort(producer, result.transactional)
        visible = "nothing of it is visible" if result.transactional else "part of it may be produced"
        raise ServiceUnavailableError(
            f"Kafka at {settings.kafka_bootstrap}: the import failed ({type(exc).__name__}: {exc}); "
            f"{visible}: run it again (the same ids)"
        ) from None
    except BaseException:
        await _abort(producer, result.transactional)
        raise
    finally:
        await producer.stop()
    return result


async def _abort(producer: AIOKafkaProducer, transactional: bool) -> None:
    """Abort the import's open transaction, if any (a failed abort leaves it to the broker's
    transaction timeout, or to the next run of the same import, whose producer fences it)."""
    if transactional:
        with contextlib.suppress(Exception):
            await producer.abort_transaction()


async def _read_and_send(
    settings: Settings,
    plan: ImportPlan,
    send: Send | None,
    result: ImportResult,
    progress: Progress,
) -> None:
    reader = Reader(plan.kind, load_countries(settings.rules or None))
    emitted_at = now_instant()
    topic = settings.topic_changes
    chunk: list[Record] = []
    try:
        with plan.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
            for item in reader.read(text):
                if isinstance(item, BadLine):
                    result.skipped += 1
                    if len(result.bad) < MAX_REPORTED:
                        result.bad.append(item)
                    continue
                change = item.change
                if change.note is None:  # the line's own note, else --note, else the file name
                    change = replace(change, note=plan.note)
                key, event = imported_event(change, plan.occurred_at, plan.sha256, item.line)
                chunk.append((topic, key, encode_change(event, emitted_at)))
                if event.action is Action.BLOCK:
                    result.blocks += 1
                else:
                    result.unblocks += 1
                if len(chunk) >= CHUNK:
                    await _flush(chunk, send, result)
                    progress.show(reader.position)
            await _flush(chunk, send, result)
            progress.show(reader.position)
    except ImportFileError as exc:
        raise ConfigError(f"{plan.path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{plan.path}: cannot read: {exc.strerror}") from None
    result.ignored = reader.ignored


Send = Callable[[list[Record]], Awaitable[None]]


async def _flush(chunk: list[Record], send: Send | None, result: ImportResult) -> None:
    if chunk and send is not None:
        await send(list(chunk))
    result.produced += len(chunk)
    chunk.clear()


class Progress:
    """Lines read, on stderr: a bar redrawn in place on a terminal; elsewhere (a log, CI) a plain
    count line at most every few seconds, never carriage returns."""

    def __init__(self, out: IO[str], total: int, every: float = 5.0) -> None:
        self._out, self._total, self._every = out, max(total, 1), every
        self._tty = out.isatty()
        self._last = time.monotonic()
        self._drawn = False

    def show(self, done: int) -> None:
        now = time.monotonic()
        if self._tty:
            if now - self._last < 0.1 and done < self._total:
                return
            share = min(done, self._total) / self._total
            bar = "#" * int(30 * share)
            self._out.write(f"\rimport [{bar:<30}] {done:,}/{self._total:,} lines ({100 * share:.0f}%)")
            self._drawn = True
        elif now - self._last >= self._every:
            self._out.write(f"import: {done:,} of {self._total:,} lines read\n")
        else:
            return
        self._last = now
        self._out.flush()

    def finish(self) -> None:
        if self._drawn:
            self._out.write("\n")
            self._out.flush()
