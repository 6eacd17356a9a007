"""The library a send service embeds: a live, in-memory blocklist current to within a second.

::

    view = await BlocklistView.open("kafka:9092", snapshot_dir="/var/lib/optout/snapshots")
    if view.is_blocked("+15551234567", "acme", sender="12345", channel="sms"):
        ...  # do not send (a marketing message, the default: stopped by every block)
    if view.is_blocked("+15551234567", "acme", channel="sms", category=MessageCategory.TRANSACTIONAL):
        ...  # a one-time code: stopped by a full block, not by "STOP MARKETING"
    print(view.lag())  # how far behind the change topic the answers are
    await view.close()

It loads the newest snapshot that verifies (a corrupt or truncated one is refused with an error in
the log and the previous one used), then tails the compacted change topic from the snapshot's
offsets with a plain assigned consumer (no group: every send-service replica reads everything and
commits nothing). With no usable snapshot it replays the topic from the beginning, which is
slower but just as correct: the compacted topic holds every block identity's latest change. So it
does when a snapshot's offset lies past its partition's end: the topic was recreated since, and
the snapshot's offsets count records of another incarnation.
Changes are applied with the projector's last-writer-wins rule, so the view converges on exactly
what Postgres holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from worker.constants import SNAPSHOT_DIR, TOPIC_CHANGES
from worker.errors import InputError, ServiceUnavailableError, SnapshotError
from worker.events.address import Countries, canonical_address, canonical_sender, match_e164
from worker.events.outgoing import decode_change
from worker.sender.blockindex import BlockIndex, SnapshotEntryError
from worker.sender.pace import CATCHING_UP, fetch_pace, set_fetch_pace
from worker.snapshot.fetch import fetch_latest
from worker.snapshot.manifest import Manifest
from worker.snapshot.reader import latest_id, read_manifest, snapshot_ids, verified_lines

log = logging.getLogger("optout.sender")

#: Longest a fetch waits for new changes: the floor of the view's propagation delay.
FETCH_MAX_WAIT_MS = 100


@dataclass(frozen=True, slots=True)
class ViewLag:
    records: int | None
    """Change-topic records not applied yet (None until every partition has answered a fetch and
    the snapshot's offsets have been checked against the partitions' ends)."""
    seconds_since_fetch: float | None
    """Since the last successful fetch: grows while the broker is unreachable."""
    snapshot: str | None
    """The snapshot the view started from (None: replayed the topic from the beginning)."""
    applied: int
    """Change events read from the topic since the snapshot."""
    blocks: int
    """Active blocks in the view now."""


def canonical_lookup(is_blocked: Callable[..., bool], countries: Countries) -> Callable[..., bool]:
    """``is_blocked`` for addresses and senders as a send service has them (``whatsapp:+44…``,
    ``+44 7700 900123``, ``07700 900123``): canonicalized as the classifier keys them
    (:mod:`worker.events.address`; a prefix names the channel) before the lookup.

    An E.164 address and a sender without ``+`` or ``:`` (a short code, a sender id, or None) are
    passed on as they are: the usual call pays two string tests. Other keyword arguments
    (``category``) are passed through. An address written otherwise is also looked up as written
    (on the channel asked about): blocks recorded before addresses were canonicalized were keyed
    so, and when in doubt the subscriber is not messaged.
    """
    default_country = countries.of
    e164 = match_e164

    def lookup(
        address: str,
        account: str,
        subaccount: str | None = None,
        sender: str | None = None,
        channel: str = "sms",
        **options: Any,
    ) -> bool:
        if sender is not None and (":" in sender or sender[:1] == "+") and e164(sender) is None:
            sender, named = canonical_sender(sender)
            channel = named or channel
        if e164(address) is None:  # is_e164() inlined: this runs for every message sent
            found = canonical_address(address, channel, default_country(account))
            if found.address != address and is_blocked(
                address, account, subaccount, sender, channel, **options
            ):
                return True  # a block keyed by the written form, from before addresses were canonical
            address, channel = found.address, found.channel
        if options:
            return is_blocked(address, account, subaccount, sender, channel, **options)
        return is_blocked(address, account, subaccount, sender, channel)

    return lookup


def load_latest(directory: Path, topic: str) -> tuple[BlockIndex, Manifest | None]:
    """The newest snapshot in ``directory`` that verifies, as an index; (empty, None) if none does."""
    candidates = snapshot_ids(directory)
    latest = latest_id(directory)
    if latest in candidates:  # the pointer first: it may be newer than a directory listing suggests
        candidates.remove(latest)
        candidates.insert(0, latest)
    for snapshot in candidates:
        path = directory / snapshot
        try:
            manifest = read_manifest(path)
            if manifest.topic != topic:
                raise SnapshotError(f"{path}: written for topic {manifest.topic}, not {topic}")
            index = BlockIndex(manifest.count)
            index.load(verified_lines(path, manifest.active), verified_lines(path, manifest.unblocked))
        except (SnapshotError, SnapshotEntryError) as exc:
            log.error("refusing snapshot %s: %s; trying the previous one", snapshot, exc)
            continue
        return index, manifest
    if candidates:
        log.error("no usable snapshot in %s: replaying %s from the beginning", directory, topic)
    else:
        log.info("no snapshot in %s: replaying %s from the beginning", directory, topic)
    return BlockIndex(), None


class BlocklistView:
    """Use :meth:`open`; ``is_blocked`` is safe to call from the event loop at any rate."""

    is_blocked: Callable[..., bool]
    """``is_blocked(address, account, subaccount=None, sender=None, channel="sms",
    category=MessageCategory.MARKETING)``: :meth:`worker.sender.blockindex.BlockIndex.is_blocked`."""

    def __init__(
        self,
        index: BlockIndex,
        manifest: Manifest | None,
        consumer: AIOKafkaConsumer,
        countries: Countries | None = None,
    ) -> None:
        self._index = index
        self._manifest = manifest
        self._consumer = consumer
        self._positions: dict[TopicPartition, int] = {}
        # Partitions sought to a snapshot's offset, until a fetch tells their high watermark.
        self._unverified: dict[TopicPartition, int] = {}
        self._applied = 0
        self._last_fetch: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._pace = fetch_pace(consumer)
        """The fetch pace as configured (``fetch_max_wait_ms``): the tail's, except while someone
        waits for it to be current (:mod:`worker.sender.pace`)."""
        self._opening = True
        """Until the tail is first current, or the first :meth:`wait_current` ends: a send service
        that has just opened the view waits for it next."""
        self._hurried = 1
        """How many wait for the view to be current (each wait_current, and the opening): the short
        fetch waits hold while any does."""
        set_fetch_pace(consumer, CATCHING_UP)
        # Bound once: a send service calls this per message, one attribute lookup is all it costs.
        self.is_blocked = canonical_lookup(index.is_blocked, countries or Countries())

    @classmethod
    async def open(
        cls,
        bootstrap_servers: str,
        *,
        topic: str = TOPIC_CHANGES,
        snapshot_dir: str | Path | None = SNAPSHOT_DIR,
        snapshot_url: str | None = None,
        snapshot_token: str | None = None,
        kafka_options: Mapping[str, Any] | None = None,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
        start_timeout: float = 30.0,
        countries: Countries | None = None,
    ) -> BlocklistView:
        """Load the newest good snapshot, then start tailing ``topic`` in the background.

        With ``snapshot_url`` (the projector's HTTP address) the latest snapshot is first fetched
        into ``snapshot_dir``; if the projector is unreachable, whatever that directory holds is
        used (a warning says so). ``snapshot_token``: the projector's OPTOUT_SNAPSHOT_TOKEN, sent
        as ``Authorization: Bearer`` when it protects ``/snapshots``. ``countries``: the default
        countries of national numbers, the classifier's (``load_countries(rules_file)``), so that
        ``is_blocked("07700 900123", ...)`` asks about the subscriber the classifier keyed as
        ``+447700900123``; without it only international forms are canonicalized.
        """
        if snapshot_url is not None and snapshot_dir is not None:
            try:
                await asyncio.to_thread(fetch_latest, snapshot_url, Path(snapshot_dir), token=snapshot_token)
            except (ServiceUnavailableError, SnapshotError) as exc:
                log.warning("could not fetch a snapshot (using the local ones): %s", exc)
        if snapshot_dir is None:
            index, manifest = BlockIndex(), None
        else:
            index, manifest = await asyncio.to_thread(load_latest, Path(snapshot_dir), topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            # Only committed transactions: the classifier's exactly-once output (harmless elsewhere).
            isolation_level="read_committed",
            **dict(kafka_options or {}),
        )
        try:
            await asyncio.wait_for(consumer.start(), start_timeout)
            partitions = await topic_partitions(consumer, topic, start_timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            await consumer.stop()
            raise ServiceUnavailableError(
                f"Kafka at {bootstrap_servers}: {type(exc).__name__}: {exc}"
            ) from None
        consumer.assign(partitions)
        view = cls(index, manifest, consumer, countries)
        offsets = manifest.offsets if manifest is not None else {}
        for tp in partitions:
            start = offsets.get(tp.partition)
            if start is None:
                await consumer.seek_to_beginning(tp)
                start = 0
            else:
                consumer.seek(tp, start)
                view._unverified[tp] = start
            view._positions[tp] = start
        view._task = asyncio.create_task(view._tail(), name="optout-blocklist-view")
        log.info(
            "blocklist view: %d blocks from %s, tailing %s (%d partitions)",
            index.blocks, manifest.id if manifest else "no snapshot", topic, len(partitions),
        )  # fmt: skip
        return view

    @property
    def manifest(self) -> Manifest | None:
        return self._manifest

    @property
    def index(self) -> BlockIndex:
        return self._index

    def lag(self) -> ViewLag:
        behind: int | None = None if self._unverified else 0
        for tp, position in self._positions.items() if behind is not None else ():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                behind = None
                break
            assert behind is not None
            behind += max(0, highwater - position)
        since = None if self._last_fetch is None else time.monotonic() - self._last_fetch
        return ViewLag(
            behind, since, self._manifest.id if self._manifest else None, self._applied, self._index.blocks
        )

    async def wait_current(self, seconds: float = 30.0) -> bool:
        """Wait until every change on the topic when called has been applied; False after ``seconds``.

        The high watermark comes from fetch responses, so a fresh one needs a fetch *sent* after
        this call: wait for two more responses per partition (the first may have been in flight),
        then for the view to reach the watermark the second one reported. Meanwhile the fetches
        wait 5 ms at the broker, not ``fetch_max_wait_ms`` (:mod:`worker.sender.pace`): on a quiet
        4-partition topic on Tansu this took 110-207 ms, now 11-17 ms.
        """
        self._hurried += 1
        set_fetch_pace(self._consumer, CATCHING_UP)
        try:
            return await self._wait_current(seconds)
        finally:
            self._opened()
            self._unhurry()

    async def _wait_current(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        consumer = self._consumer
        called_ms = time.time() * 1000
        seen: dict[TopicPartition, float] = {}
        targets: dict[TopicPartition, int] = {}
        while time.monotonic() < deadline:
            for tp in self._positions:
                polled = consumer.last_poll_timestamp(tp) if tp not in targets else None
                if polled is None:
                    continue
                if tp not in seen:
                    if polled > called_ms:
                        seen[tp] = polled
                elif polled > seen[tp]:
                    targets[tp] = consumer.highwater(tp) or 0
            if (
                not self._unverified
                and len(targets) == len(self._positions)
                and all(self._positions[tp] >= end for tp, end in targets.items())
            ):
                return True
            await asyncio.sleep(0.005)
        return False

    def _opened(self) -> None:
        """The opening no longer needs the short fetch waits (once)."""
        if self._opening:
            self._opening = False
            self._unhurry()

    def _unhurry(self) -> None:
        self._hurried -= 1
        if not self._hurried and self._pace is not None:
            set_fetch_pace(self._consumer, self._pace)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def __aenter__(self) -> BlocklistView:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _tail(self) -> None:
        consumer, index, positions = self._consumer, self._index, self._positions
        failing = False
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            except KafkaError as exc:
                if not failing:
                    log.warning("blocklist view cannot fetch changes (answers are getting stale): %s", exc)
                failing = True
                await asyncio.sleep(1.0)
                continue
            if failing:
                log.info("blocklist view fetching changes again")
                failing = False
            self._last_fetch = time.monotonic()
            if self._unverified and await self._replay_if_untrusted():
                continue  # what this fetch returned predates the seek; the replay reads it again
            skipped = 0
            for tp, records in batch.items():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        index.apply(decode_change(record.value))
                    except InputError:
                        skipped += 1  # the projector dead-letters it; the view can only skip it
                self._applied += len(records)
                positions[tp] = records[-1].offset + 1
            advance_past_markers(consumer, positions)
            if skipped:
                log.warning("blocklist view skipped %d malformed change events", skipped)
            if self._opening and self._caught_up():
                self._opened()

    def _caught_up(self) -> bool:
        """Whether every partition is at the high watermark of its last fetch response."""
        if self._unverified:
            return False
        for tp, position in self._positions.items():
            highwater = self._consumer.highwater(tp)
            if highwater is None or position < highwater:
                return False
        return True

    async def _replay_if_untrusted(self) -> bool:
        """True if the snapshot's offsets cannot be trusted, after seeking every partition back to
        the beginning (the snapshot's blocks stay: Postgres keeps them too, and replays the topic
        on top, as the projector does when its stored offsets are past the end).

        An offset past a partition's end means the topic is another incarnation (recreated, or a
        restarted memory-only dev broker), so the other partitions' offsets are meaningless too,
        even where the new topic has grown past them. The end is the high watermark of the first
        fetch response after the seek, right on both brokers: Tansu answers a fetch past the end
        with nothing (and under-reports ``end_offsets()``), Apache Kafka answers
        OFFSET_OUT_OF_RANGE, aiokafka resets to the earliest offset and the next fetch reports the
        end. Until every partition has been checked the view is not current (``lag().records`` is
        None, ``wait_current`` waits). aiokafka 0.14 cannot read topic ids (Metadata v5), so a new
        incarnation that has already grown past every offset of the snapshot is not detected.
        """
        consumer, untrusted = self._consumer, []
        for tp, offset in list(self._unverified.items()):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            del self._unverified[tp]
            if offset > highwater:
                untrusted.append(f"[{tp.partition}] {offset} > {highwater}")
        if not untrusted:
            return False
        self._unverified.clear()
        log.warning(
            "blocklist view: the offsets of snapshot %s cannot be trusted (past the end of %s %s: "
            "topic recreated?); replaying the topic from the beginning on top of it",
            self._manifest.id if self._manifest else "-",
            next(iter(self._positions)).topic,
            ", ".join(untrusted),
        )
        await consumer.seek_to_beginning(*self._positions)
        for tp in self._positions:
            self._positions[tp] = 0
        return True


def advance_past_markers(consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]) -> None:
    """Move each position to the consumer's own where that is further: past the transaction markers
    a read_committed fetch skips without returning a record. Under an exactly-once classifier
    (Apache Kafka) the offsets of the records alone stop one short of the high watermark, and a
    tail waiting to be current (the view's ``wait_current``, the classifier's confirmation tail)
    never was."""
    for tp in positions:
        consumed = consumed_position(consumer, tp)
        if consumed is not None and consumed > positions[tp]:
            positions[tp] = consumed


def consumed_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The consumer's position in ``tp`` (the offset after everything its fetches returned or
    skipped: records, transaction markers, aborted batches), without waiting; None while it has none
    (just sought, being reset). ``consumer.position()`` would wait for a reset; this reads the same
    state (aiokafka 0.14's subscription state) and never blocks the tail loop."""
    state = consumer._subscription.subscription
    if state is None or not consumer._subscription.is_assigned(tp):
        return None
    tp_state = state.assignment.state_value(tp)
    if tp_state is None or not tp_state.has_valid_position:
        return None
    position: int = tp_state.position
    return position


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, seconds: float) -> list[TopicPartition]:
    """The partitions of ``topic``, waiting up to ``seconds`` for it to exist (right on every broker)."""
    deadline = time.monotonic() + seconds
    while True:
        # Track the topic in the client's own metadata and refresh it. ``consumer.topics()`` fetches
        # into a throwaway copy: it only looked enough on Tansu, whose first metadata answer lists
        # every topic; Apache Kafka's lists none until a topic is asked for.
        await consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} does not exist")
        await asyncio.sleep(0.5)
