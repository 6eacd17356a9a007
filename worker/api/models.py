"""The API's requests and responses (pydantic): what FastAPI validates and the OpenAPI document shows.

Identifiers (address, subaccount, sender, channel) have the limits every change event has
(:mod:`worker.events.fields`): at most 256 bytes of UTF-8, no control character. A value that
breaks them is a 422 here, never a change event the projector would have to dead-letter.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from worker.constants import MAX_FIELD_BYTES, MAX_NOTE_CHARS
from worker.events.fields import field_problem
from worker.model import Category, MessageCategory


def _storable(value: str) -> str:
    problem = field_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_FIELD_BYTES,
        description="at most 256 bytes of UTF-8, no control character",
    ),
    AfterValidator(_storable),
]


def _note(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


class ChangeRequest(BaseModel):
    """``POST /v1/blocks`` and ``POST /v1/unblocks``: one block of the token's account."""

    model_config = ConfigDict(extra="forbid")

    address: Identifier = Field(description="the subscriber, in any form optout check takes")
    subaccount: Identifier | None = Field(None, description="narrows the block to one subaccount")
    sender: Identifier | None = Field(
        None, description="narrows the block to one sender (not with subaccount)"
    )
    channel: Identifier | None = Field(None, description="sms, whatsapp, ...; absent: * (every channel)")
    category: Category = Field(Category.ALL, description="all, or marketing only")
    note: Annotated[str | None, AfterValidator(_note)] = Field(
        None,
        max_length=MAX_NOTE_CHARS,
        description="why, for the history; absent: the token's id and name",
    )

    @model_validator(mode="after")
    def _one_narrower(self) -> ChangeRequest:
        if self.subaccount is not None and self.sender is not None:
            raise ValueError("subaccount and sender are both set: a block is on a subaccount or a sender")
        return self


class ScopeOut(BaseModel):
    level: str
    account_id: str
    subaccount_id: str | None
    sender: str | None
    channel: str


class Block(BaseModel):
    """An active block, as the state table holds it."""

    level: str = Field(description="account, subaccount or sender")
    account_id: str
    subaccount_id: str | None
    sender: str | None
    channel: str = Field(description="a channel, or * for every channel")
    category: Category
    address: str
    keyword: str | None
    rule: str | None
    reason: str = Field(description="opt_out_keyword, manual, import, api, link, ...")
    note: str | None
    occurred_at: str
    event_id: str
    source_message_id: str | None


class CheckTarget(BaseModel):
    account_id: str
    subaccount_id: str | None
    sender: str | None
    channel: str | None
    category: MessageCategory


class CheckResult(BaseModel):
    """As ``optout check`` prints it, for the token's account only."""

    address: str = Field(description="the canonical address checked")
    target: CheckTarget
    blocked: bool
    blocks: list[Block] = Field(description="the blocks that stop this message")
    other_blocks: list[Block] = Field(description="the account's other blocks on the address")


class BlocksPage(BaseModel):
    blocks: list[Block]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: the last page")


class HistorySource(BaseModel):
    topic: str | None
    partition: int | None
    offset: int | None


class HistoryEntry(BaseModel):
    occurred_at: str
    action: str
    scope: ScopeOut
    channel: str
    category: Category
    keyword: str | None
    rule: str | None
    language: str | None
    match: str | None
    reason: str
    note: str | None
    source_message_id: str | None
    source: HistorySource
    event_id: str


class History(BaseModel):
    address: str = Field(description="the canonical address")
    history: list[HistoryEntry] = Field(description="oldest first")


class ChangeAccepted(BaseModel):
    """The change event produced to the change topic (acknowledged by the broker). The projector,
    the snapshots and the send services' views apply it within moments; ``GET /v1/check`` shows it
    once the projector has."""

    event_id: str
    action: str
    address: str
    scope: ScopeOut
    category: Category
    reason: str
    note: str | None
    occurred_at: str


def as_dict(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
