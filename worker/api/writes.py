"""``POST /v1/blocks`` and ``POST /v1/unblocks``: change events with reason ``api``.

Built like ``optout block`` builds them (:func:`worker.classify.manual.manual_change`, then
:func:`~worker.classify.manual.manual_event` with reason ``api``), keyed by the block identity and
produced to the change topic; the answer (202) comes only once the broker acknowledged it, so an
accepted change is durable. The projector applies it like any other change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from worker.api.auth import Authenticated, Caller
from worker.api.context import ApiContext, context
from worker.api.models import ChangeAccepted, ChangeRequest, ScopeOut
from worker.api.problems import ProblemError, responses
from worker.classify.manual import REASON_API, ManualChangeError, manual_change, manual_event
from worker.events.inbound import format_instant
from worker.events.outgoing import encode_change
from worker.model import Action
from worker.stream.produce import send_batches

router = APIRouter(prefix="/v1", tags=["changes"], responses=responses(401, 422, 429, 503))

Context = Annotated[ApiContext, Depends(context)]


@router.post("/blocks", status_code=202, response_model=ChangeAccepted, summary="Block an address")
async def block(body: ChangeRequest, caller: Authenticated, ctx: Context) -> ChangeAccepted:
    """Block ``address`` for the token's account (or one subaccount or sender of it)."""
    return await _change(Action.BLOCK, body, caller, ctx)


@router.post("/unblocks", status_code=202, response_model=ChangeAccepted, summary="Lift a block")
async def unblock(body: ChangeRequest, caller: Authenticated, ctx: Context) -> ChangeAccepted:
    """Lift exactly the block with this scope and category (as ``optout unblock``: no widening)."""
    return await _change(Action.UNBLOCK, body, caller, ctx)


async def _change(action: Action, body: ChangeRequest, caller: Caller, ctx: ApiContext) -> ChangeAccepted:
    from datetime import UTC, datetime

    note = body.note if body.note and body.note.strip() else f"API token {caller.token_id} ({caller.name})"
    fields = {
        "action": action.value,
        "address": body.address,
        "account": caller.account,
        "subaccount": body.subaccount,
        "sender": body.sender,
        "channel": body.channel,
        "category": body.category.value,
        "note": note,
    }
    try:
        change = manual_change(fields, ctx.countries)
    except ManualChangeError as exc:
        raise ProblemError(422, str(exc)) from None
    now = format_instant(datetime.now(UTC))
    key, event = manual_event(change, now, REASON_API)
    topic = ctx.settings.topic_changes
    failure = await send_batches(ctx.producer, [(topic, key, encode_change(event, now))])
    if failure is not None:
        raise ProblemError(
            503,
            f"Kafka did not acknowledge the change ({type(failure[1]).__name__}): try again",
            headers={"Retry-After": "5"},
        )
    scope = event.scope
    return ChangeAccepted(
        event_id=event.event_id,
        action=event.action.value,
        address=event.address,
        scope=ScopeOut(
            level=scope.level.value,
            account_id=scope.account_id,
            subaccount_id=scope.subaccount_id,
            sender=scope.sender,
            channel=scope.channel,
        ),
        category=event.category,
        reason=event.reason,
        note=event.note,
        occurred_at=event.occurred_at,
    )
