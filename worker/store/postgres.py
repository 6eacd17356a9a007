"""The Postgres side of the blocklist: history, last-writer-wins state and projector offsets.

:meth:`Store.apply` writes a whole consumed batch (history rows, state rows, offsets) in one
transaction with one set-based statement per table, so the projector's throughput does not
depend on the batch size in round trips and a crash can never separate the rows from the offsets
that say they were written. The state upsert compares versions in SQL, not only in Python: a
second projector (during a rebalance) or a replayed batch can never overwrite a newer row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeAlias

import asyncpg

from worker.classify.scope import change_key
from worker.config import redact_url
from worker.errors import ConfigError, RefusedError, ServiceUnavailableError
from worker.events.inbound import format_instant, parse_instant
from worker.events.ordering import ACTION_RANK, latest_per_block
from worker.model import ChangeEvent, MessageCategory

#: Seconds any one statement of the projector may take before its connection counts as dead (a
#: batch's statements take well under a second; a slow server is waited out, a stalled one not).
COMMAND_TIMEOUT = 60.0

#: Seconds a graceful close of the pool may take before its connections are terminated.
CLOSE_TIMEOUT = 10.0

#: Seconds to wait for a connection: long enough for a busy server, short enough that the
#: projector's backoff (not a hung connect) decides how often we try.
CONNECT_TIMEOUT = 10.0

_APP_NAME = {"application_name": "optout-worker"}

#: Seconds one of our transactions may sit idle before the server ends its session. Ours never
#: wait on anything but Postgres between statements, so an idle one means its client is gone
#: without a word (SIGKILLed behind a proxy, a host that vanished): its row locks would stall every
#: later projector until TCP keepalive noticed, after hours. Below COMMAND_TIMEOUT, so the waiting
#: successor's statement outlives the dead session's locks.
IDLE_TRANSACTION_TIMEOUT = 30.0

#: Worth retrying: the server is down, restarting, full, or rolled us back (deadlock/serialization).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # CannotConnectNow, AdminShutdown, CrashShutdown
    asyncpg.exceptions.InsufficientResourcesError,  # TooManyConnections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialization failure
    # The connection's protocol state got confused by a connection that died mid-operation
    # ("cannot switch to state 15; another operation (2) is in progress", seen when backends are
    # terminated during apply()); the connection is dropped and a new one fixes it.
    asyncpg.exceptions.InternalClientError,
)

#: What may leave a connection half-dead: it is terminated rather than returned to the pool.
_LOST: tuple[type[BaseException], ...] = (*_TRANSIENT, asyncpg.InterfaceError)

#: The data, not the connection: the same statement would be refused again (a NUL in text, an index
#: entry too large, a constraint). The projector finds the refused events and dead-letters them.
_REFUSED: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # also asyncpg's own "invalid input for query argument"
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,  # index row size exceeds the btree maximum
)

#: Not worth retrying: the settings are wrong and will stay wrong until someone changes them.
_MISCONFIGURED: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InvalidCatalogNameError,  # the database does not exist
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # unknown role, bad password
    asyncpg.exceptions.ClientConfigurationError,  # unparsable DSN
)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def translate_errors(dsn: str) -> Iterator[None]:
    """Turn driver errors into the worker's own, so callers decide retry-or-exit from the class.

    Callers show the message as is (the CLI prints it, the projector logs it and backs off), so it
    is one line and never contains the password.
    """
    try:
        yield
    except asyncpg.exceptions.UndefinedTableError:
        raise ConfigError(
            f"Postgres at {redact_url(dsn)} has no optout tables: run `optout migrate` first"
        ) from None
    except _MISCONFIGURED as exc:
        raise ConfigError(f"Postgres at {redact_url(dsn)}: {_one_line(exc)}") from None
    except _TRANSIENT as exc:
        raise ServiceUnavailableError(
            f"Postgres at {redact_url(dsn)} is unavailable: {_one_line(exc)}"
        ) from None
    except _REFUSED as exc:
        raise RefusedError(f"Postgres at {redact_url(dsn)} refused the data: {_one_line(exc)}") from None
    except asyncpg.InterfaceError as exc:
        if not _connection_lost(exc):
            raise  # a programming error, not an outage: retrying would loop for ever
        raise ServiceUnavailableError(
            f"Postgres at {redact_url(dsn)} is unavailable: {_one_line(exc)}"
        ) from None


def _connection_lost(exc: asyncpg.InterfaceError) -> bool:
    """asyncpg reports a connection that died inside a transaction or a pooled call as a plain
    InterfaceError ("cannot call Transaction.__aexit__(): the underlying connection is closed",
    "connection is closed"), which hides the socket error behind it; either way it is an outage."""
    cause = exc.__context__ or exc.__cause__
    return "closed" in str(exc) or isinstance(cause, _TRANSIENT)


async def connect_once(dsn: str) -> asyncpg.Connection[asyncpg.Record]:
    """A single connection (for migrations and admin work); errors translated like the pool's."""
    with translate_errors(dsn):
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT, server_settings=_APP_NAME)


async def forget_offsets(dsn: str, topic: str) -> int:
    """Drop every stored offset of ``topic``: for a topic that was recreated empty (a fresh
    memory-only dev broker), whose old offsets would point past records never applied."""
    conn = await connect_once(dsn)
    try:
        with translate_errors(dsn):
            return _affected(await conn.execute("DELETE FROM consumer_offsets WHERE topic = $1", topic))
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event Postgres will not store, and why (one line, for the dead letter)."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    history_inserted: int
    """Events not seen before (a replayed batch inserts 0)."""
    state_changed: int
    """State rows created or overwritten by a newer version."""


# Column lists are spelled out once so the INSERTs, the unnest() casts and the Python tuples
# cannot drift apart.
_HISTORY_COLUMNS = (
    ("event_id", "text"),
    ("action", "text"),
    ("level", "text"),
    ("account_id", "text"),
    ("subaccount_id", "text"),
    ("sender", "text"),
    ("channel", "text"),
    ("address", "text"),
    ("keyword", "text"),
    ("rule", "text"),
    ("reason", "text"),
    ("source_topic", "text"),
    ("source_partition", "integer"),
    ("source_offset", "bigint"),
    ("source_message_id", "text"),
    ("occurred_at", "timestamptz"),
    ("language", "text"),
    ("match", "text"),
    ("category", "text"),
    ("note", "text"),
)

_STATE_KEY = ("address", "account_id", "level", "subaccount_id", "sender", "channel", "category")
_STATE_COLUMNS = (
    ("address", "text"),
    ("account_id", "text"),
    ("level", "text"),
    ("subaccount_id", "text"),
    ("sender", "text"),
    ("channel", "text"),
    ("category", "text"),
    ("action", "text"),
    ("action_rank", "smallint"),
    ("occurred_at", "timestamptz"),
    ("event_id", "text"),
    ("keyword", "text"),
    ("rule", "text"),
    ("reason", "text"),
    ("source_topic", "text"),
    ("source_partition", "integer"),
    ("source_offset", "bigint"),
    ("source_message_id", "text"),
    ("note", "text"),
)


def _unnest(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(columns, 1))


def _names(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(name for name, _ in columns)


_INSERT_HISTORY = f"""
INSERT INTO blocklist_history ({_names(_HISTORY_COLUMNS)})
SELECT * FROM unnest({_unnest(_HISTORY_COLUMNS)})
ON CONFLICT (event_id) DO NOTHING
"""

_UPSERT_STATE = f"""
INSERT INTO blocklist_state AS s ({_names(_STATE_COLUMNS)})
SELECT * FROM unnest({_unnest(_STATE_COLUMNS)})
ON CONFLICT ({", ".join(_STATE_KEY)}) DO UPDATE SET
    {", ".join(f"{name} = EXCLUDED.{name}" for name, _ in _STATE_COLUMNS if name not in _STATE_KEY)},
    updated_at = now()
WHERE (EXCLUDED.occurred_at, EXCLUDED.action_rank, EXCLUDED.event_id)
    > (s.occurred_at, s.action_rank, s.event_id)
"""

_UPSERT_OFFSETS = """
INSERT INTO consumer_offsets AS o (consumer_group, topic, partition, next_offset)
SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[])
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
    next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset),
    updated_at = now()
WHERE EXCLUDED.next_offset > o.next_offset
"""

_OFFSETS = "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2"

_LEVEL_ORDER = "CASE level WHEN 'account' THEN 0 WHEN 'subaccount' THEN 1 ELSE 2 END"

_BLOCK_SELECT = f"""
SELECT level, account_id, NULLIF(subaccount_id, '') AS subaccount_id, NULLIF(sender, '') AS sender,
       channel, category, address, keyword, rule, reason, note, occurred_at, event_id, source_message_id
FROM blocklist_state
WHERE address = $1 AND active AND {{where}}
ORDER BY account_id, {_LEVEL_ORDER}, subaccount_id, sender, channel, category
"""

# The coverage rule of worker.classify.scope.covers(), as a predicate on the state table.
_CHECK = _BLOCK_SELECT.format(
    where="""account_id = $2
      AND (level = 'account'
           OR (level = 'subaccount' AND $3::text IS NOT NULL AND subaccount_id = $3::text)
           OR (level = 'sender' AND $4::text IS NOT NULL AND sender = $4::text))
      AND ($5::text IS NULL OR channel = '*' OR channel = $5::text)
      AND ($6::text = 'marketing' OR category = 'all')"""
)

_BLOCKS = _BLOCK_SELECT.format(where="($2::text IS NULL OR account_id = $2::text)")

#: The state table's primary key within one account (``Store.account_blocks``).
_PAGE_KEY = "address, level, subaccount_id, sender, channel, category"
_PAGE_COLUMNS = """level, account_id, NULLIF(subaccount_id, '') AS subaccount_id,
       NULLIF(sender, '') AS sender, channel, category, address, keyword, rule, reason, note,
       occurred_at, event_id, source_message_id,
       address AS k_address, level AS k_level, subaccount_id AS k_sub, sender AS k_sender,
       channel AS k_channel, category AS k_category"""

_HISTORY = """
SELECT occurred_at, action, level, account_id, subaccount_id, sender, channel, category, keyword, rule,
       language, match, reason, note, source_topic, source_partition, source_offset, source_message_id,
       event_id
FROM blocklist_history
WHERE address = $1 AND ($2::text IS NULL OR account_id = $2::text)
ORDER BY occurred_at, CASE action WHEN 'block' THEN 1 ELSE 0 END, event_id
"""


_NO_SOURCE = (None, None, None, None)


def _source_columns(event: ChangeEvent) -> tuple[Any, ...]:
    source = event.source
    return (
        _NO_SOURCE if source is None else (source.topic, source.partition, source.offset, source.message_id)
    )


def _history_row(event: ChangeEvent) -> tuple[Any, ...]:
    scope = event.scope
    return (
        event.event_id,
        event.action.value,
        scope.level.value,
        scope.account_id,
        scope.subaccount_id,
        scope.sender,
        scope.channel,
        event.address,
        event.keyword,
        event.rule,
        event.reason,
        *_source_columns(event),
        parse_instant(event.occurred_at, "occurred_at"),
        event.language,
        None if event.match is None else event.match.value,
        event.category.value,
        event.note,
    )


def _state_row(event: ChangeEvent) -> tuple[Any, ...]:
    scope = event.scope
    return (
        event.address,
        scope.account_id,
        scope.level.value,
        scope.subaccount_id or "",
        scope.sender or "",
        scope.channel,
        event.category.value,
        event.action.value,
        ACTION_RANK[event.action],
        parse_instant(event.occurred_at, "occurred_at"),
        event.event_id,
        event.keyword,
        event.rule,
        event.reason,
        *_source_columns(event),
        event.note,
    )


def _state_key(event: ChangeEvent) -> bytes:
    """The block key of the row the event lands in.

    Computed here from the event, so no producer's key encoding can split one block into two
    rows, and with '' folded into None the
    way the table stores it: two events that hit one row must collapse to one upsert row, or
    Postgres refuses the statement ("cannot affect row a second time").
    """
    scope = replace(
        event.scope, subaccount_id=event.scope.subaccount_id or None, sender=event.scope.sender or None
    )
    return change_key(replace(event, scope=scope))


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Row tuples to one list per column: the shape unnest() takes."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def _affected(status: str) -> int:
    """Rows written, from a command tag like ``INSERT 0 12``."""
    return int(status.rsplit(" ", 1)[-1])


def _as_dict(record: asyncpg.Record) -> dict[str, Any]:
    block = dict(record)
    block["occurred_at"] = format_instant(record["occurred_at"])
    return block


#: A pooled or a plain connection: the writes below take either.
_Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"


def _rows(events: Sequence[ChangeEvent]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """History and state rows of a batch: one per event id, one per block (the newest).

    Built (and timestamps validated) before a connection is taken, and sorted so two concurrent
    projectors lock rows in the same order instead of deadlocking.
    """
    unique = {event.event_id: event for event in events}
    history = [_history_row(unique[event_id]) for event_id in sorted(unique)]
    winners = latest_per_block((_state_key(event), event) for event in events)
    state = sorted(_state_row(winners[key]) for key in winners)
    return history, state


async def _write(conn: _Conn, history: list[tuple[Any, ...]], state: list[tuple[Any, ...]]) -> ApplyResult:
    if not history:
        return ApplyResult(0, 0)
    inserted = _affected(await conn.execute(_INSERT_HISTORY, *_columns(history, len(_HISTORY_COLUMNS))))
    changed = _affected(await conn.execute(_UPSERT_STATE, *_columns(state, len(_STATE_COLUMNS))))
    return ApplyResult(inserted, changed)


async def _bisect(
    conn: _Conn,
    indexed: list[tuple[int, ChangeEvent]],
    refused: list[Refusal],
) -> None:
    try:
        async with conn.transaction():  # a savepoint: a refused half is undone, an accepted one kept
            await _write(conn, *_rows([event for _, event in indexed]))
    except _REFUSED as exc:
        if len(indexed) == 1:
            refused.append(Refusal(indexed[0][0], _one_line(exc)))
            return
        middle = len(indexed) // 2
        await _bisect(conn, indexed[:middle], refused)
        await _bisect(conn, indexed[middle:], refused)


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A pool ``reset`` that sends nothing (``Store.connect(reset_on_release=False)``)."""


class Store:
    """A pool of connections to the blocklist database; ``async with await Store.connect(dsn) as
    store:`` closes it on the way out."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        command_timeout: float | None = None,
        reset_on_release: bool = True,
        idle_transaction_timeout: float = IDLE_TRANSACTION_TIMEOUT,
    ) -> Store:
        """``command_timeout`` bounds every statement, BEGIN and COMMIT included: without it a
        half-open connection (a dead NAT entry, a stalled proxy) would hang the caller for ever,
        since TCP keepalive notices only after hours. A timeout is an outage like any other.

        ``reset_on_release=False`` skips asyncpg's reset query (advisory unlock, CLOSE ALL,
        UNLISTEN, RESET ALL: a round trip) each time a connection goes back to the pool: for a
        caller whose queries leave no session state, such as the HTTP API, where it was a round
        trip per query on top of the query itself.

        ``idle_transaction_timeout``: see :data:`IDLE_TRANSACTION_TIMEOUT`."""
        settings = {
            **_APP_NAME,
            "idle_in_transaction_session_timeout": str(round(idle_transaction_timeout * 1000)),
        }
        with translate_errors(dsn):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=command_timeout,
                server_settings=settings,
                reset=None if reset_on_release else _no_reset,
            )
        return cls(pool, dsn)

    @property
    def dsn(self) -> str:
        return self._dsn

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        """For ad-hoc queries (tests, admin tools); the projector's writes go through :meth:`apply`."""
        return self._pool

    async def close(self) -> None:
        """Close gracefully, or terminate after CLOSE_TIMEOUT: a connection left half-open (or an
        asyncpg cancel request stuck behind one) must not hang the worker's shutdown."""
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            self._pool.terminate()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def connection(self) -> contextlib.AbstractAsyncContextManager[_Conn]:
        """A pooled connection with the Store's error translation, for the queries of other
        modules (the API's tokens, :mod:`worker.store.tokens`)."""
        return self._connection()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Conn]:
        """A pooled connection, errors translated; one that failed mid-operation is terminated,
        never handed out again half-dead (asyncpg would only notice on its next use)."""
        with translate_errors(self._dsn):
            # Bounded both ways: acquire() waits for a free connection, and the same timeout bounds
            # the release, which waits for asyncpg's cancellation of a timed-out statement; on a
            # half-open connection that cancellation may never be acknowledged, and an unbounded
            # release would leak the connection until the pool has none left (seen in chaos runs).
            async with self._pool.acquire(timeout=COMMAND_TIMEOUT) as conn:
                try:
                    yield conn
                except _LOST:
                    # asyncpg already detached it from the pool if it noticed the loss itself.
                    with contextlib.suppress(asyncpg.InterfaceError):
                        conn.terminate()
                    raise

    async def load_offsets(self, group: str, topic: str) -> dict[int, int]:
        async with self._connection() as conn:
            rows = await conn.fetch(_OFFSETS, group, topic)
        return {row["partition"]: row["next_offset"] for row in rows}

    async def apply(
        self,
        group: str,
        events: Sequence[ChangeEvent],
        offsets: Mapping[tuple[str, int], int],
    ) -> ApplyResult:
        """Store a batch and the offsets after it, all or nothing.

        Safe to repeat (history is keyed by event id, state only moves to a newer version, offsets
        only move forward), which is what makes at-least-once delivery from Kafka exactly-once here.
        """
        history, state = _rows(events)
        positions = sorted(
            (group, topic, partition, offset) for (topic, partition), offset in offsets.items()
        )
        if not history and not positions:
            return ApplyResult(0, 0)
        async with self._connection() as conn, conn.transaction():
            result = await _write(conn, history, state)
            if positions:
                await conn.execute(_UPSERT_OFFSETS, *_columns(positions, 4))
        return result

    async def find_refused(self, events: Sequence[ChangeEvent]) -> list[Refusal]:
        """The events Postgres refuses, found by bisection in a transaction that is rolled back.

        Called after :meth:`apply` raised :class:`RefusedError`, so the cost (a few savepoints per
        refused event) is paid only then. Halves that are accepted stay applied inside the
        transaction, so an event refused only in combination with earlier ones is found too.
        """
        refused: list[Refusal] = []
        async with self._connection() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await _bisect(conn, list(enumerate(events)), refused)
            finally:
                await transaction.rollback()
        return refused

    async def check(
        self,
        address: str,
        account_id: str,
        subaccount_id: str | None = None,
        sender: str | None = None,
        channel: str | None = None,
        category: MessageCategory = MessageCategory.MARKETING,
    ) -> list[dict[str, Any]]:
        """The active blocks that stop a ``category`` message from account/subaccount/sender on
        ``channel``: a transactional message is stopped by full blocks only.

        ``channel=None`` means "on any channel": every block of the account that would cover the
        sender on some channel counts.
        """
        async with self._connection() as conn:
            rows = await conn.fetch(
                _CHECK, address, account_id, subaccount_id, sender, channel, category.value
            )
        return [_as_dict(row) for row in rows]

    async def blocks(self, address: str, account_id: str | None = None) -> list[dict[str, Any]]:
        """Every active block on ``address``, whoever it covers: context next to :meth:`check`."""
        async with self._connection() as conn:
            rows = await conn.fetch(_BLOCKS, address, account_id)
        return [_as_dict(row) for row in rows]

    async def account_blocks(
        self,
        account_id: str,
        *,
        address: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        after: tuple[str, str, str, str, str, str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """One page of ``account_id``'s active blocks in primary-key order (keyset pagination, for
        ``GET /v1/blocks``): at most ``limit`` blocks whose key (address, level, subaccount, sender,
        channel, category; '' for an absent subaccount or sender) comes after ``after``.

        Each row also has ``key``: the raw key of the row, for the next page's ``after``. Filters
        are exact: ``channel="*"`` lists the blocks on every channel, not all of them.
        """
        where = ["account_id = $1", "active"]
        params: list[Any] = [account_id]
        for column, value in (("address", address), ("channel", channel), ("category", category)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}::text")
        if after is not None:
            start = len(params) + 1
            params.extend(after)
            marks = ", ".join(f"${i}::text" for i in range(start, start + len(after)))
            where.append(f"({_PAGE_KEY}) > ({marks})")
        params.append(limit)
        sql = (
            f"SELECT {_PAGE_COLUMNS} FROM blocklist_state WHERE {' AND '.join(where)} "
            f"ORDER BY {_PAGE_KEY} LIMIT ${len(params)}"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        page = []
        for row in rows:
            block = _as_dict(row)
            block["key"] = tuple(
                block.pop(name)
                for name in ("k_address", "k_level", "k_sub", "k_sender", "k_channel", "k_category")
            )
            page.append(block)
        return page

    async def history(self, address: str, account_id: str | None = None) -> list[dict[str, Any]]:
        """Every change ever applied to ``address``, in the order last-writer-wins ranks them."""
        async with self._connection() as conn:
            rows = await conn.fetch(_HISTORY, address, account_id)
        return [_as_dict(row) for row in rows]
