"""``GET /v1/check``, ``GET /v1/blocks`` and ``GET /v1/history/{address}``: the token's account only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from worker.api.auth import Authenticated
from worker.api.context import ApiContext, context
from worker.api.cursor import CursorError, decode_cursor, encode_cursor
from worker.api.models import Block, BlocksPage, CheckResult, CheckTarget, History, HistoryEntry, Identifier
from worker.api.problems import ProblemError, responses
from worker.api.query import canonical_lookup
from worker.model import Category, MessageCategory

router = APIRouter(prefix="/v1", tags=["blocklist"], responses=responses(401, 422, 429, 503))

Context = Annotated[ApiContext, Depends(context)]
MAX_PAGE = 1000


@router.get("/check", response_model=CheckResult, summary="Is this address blocked for this message?")
async def check(
    caller: Authenticated,
    ctx: Context,
    address: Annotated[
        Identifier, Query(description="the subscriber, in any form (whatsapp:+44…, national)")
    ],
    subaccount: Annotated[Identifier | None, Query()] = None,
    sender: Annotated[Identifier | None, Query(description="the number, short code or sender id")] = None,
    channel: Annotated[Identifier | None, Query(description="absent: blocks on any channel count")] = None,
    category: Annotated[
        MessageCategory, Query(description="of the message: transactional ones pass marketing-only blocks")
    ] = MessageCategory.MARKETING,
) -> dict[str, Any]:
    """The blocks that stop a message from the token's account (its subaccount, sender, channel) to
    ``address``, as ``optout check`` answers; ``address`` is canonicalized as the classifier does."""
    key, sender, channel = canonical_lookup(ctx.countries, address, caller.account, sender, channel)
    applying = await ctx.store.check(key, caller.account, subaccount, sender, channel, category)
    every = await ctx.store.blocks(key, caller.account)
    ids = {block["event_id"] for block in applying}
    return {
        "address": key,
        "target": CheckTarget(
            account_id=caller.account,
            subaccount_id=subaccount,
            sender=sender,
            channel=channel,
            category=category,
        ),
        "blocked": bool(applying),
        "blocks": applying,
        "other_blocks": [block for block in every if block["event_id"] not in ids],
    }


@router.get("/blocks", response_model=BlocksPage, summary="The account's active blocks, a page at a time")
async def list_blocks(
    caller: Authenticated,
    ctx: Context,
    address: Annotated[Identifier | None, Query(description="only this subscriber's blocks")] = None,
    channel: Annotated[
        Identifier | None, Query(description="only blocks on this channel (* : every channel)")
    ] = None,
    category: Annotated[Category | None, Query(description="only blocks of this category")] = None,
    cursor: Annotated[
        str | None, Query(max_length=4096, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> BlocksPage:
    """Active blocks in a stable order (keyset pagination: a page costs the same at any depth, and
    changes meanwhile neither skip nor repeat a block)."""
    try:
        after = decode_cursor(cursor) if cursor is not None else None
    except CursorError as exc:
        raise ProblemError(422, str(exc)) from None
    if address is not None:
        address = canonical_lookup(ctx.countries, address, caller.account, None, None)[0]
    rows = await ctx.store.account_blocks(
        caller.account,
        address=address,
        channel=channel,
        category=None if category is None else category.value,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["key"]) if more else None
    return BlocksPage(
        blocks=[Block.model_validate({k: v for k, v in row.items() if k != "key"}) for row in rows],
        next_cursor=next_cursor,
    )


@router.get("/history/{address}", response_model=History, summary="An address's opt-out/opt-in history")
async def history(caller: Authenticated, ctx: Context, address: Identifier) -> History:
    """Every change of the token's account on ``address``, oldest first (as ``optout history``)."""
    from worker.cli import history_line

    key = canonical_lookup(ctx.countries, address, caller.account, None, None)[0]
    rows = await ctx.store.history(key, caller.account)
    return History(address=key, history=[HistoryEntry.model_validate(history_line(row)) for row in rows])
