"""Who is calling: the bearer token names one account, and every route acts for that account only.

The account never comes from the request itself (no ``account`` parameter anywhere): a token of
account B asking about A's subscriber sees B's blocks on that address (none), and its blocks and
unblocks land in B. Then the token's rate limit (:mod:`worker.api.ratelimit`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.api.context import ApiContext, context
from worker.api.problems import ProblemError, unauthorized
from worker.api.ratelimit import retry_after
from worker.api.tokens import matches, parse_token

log = logging.getLogger("optout.api")

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="opt_<id>_<secret>",
    description="An API token made with `optout token create --account A --name N`.",
)

#: Compared against when the id is unknown, so an unknown id costs the same time as a wrong secret.
_NO_HASH = b"\0" * 32
#: Seconds between writes of a token's last_used_at.
TOUCH_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Caller:
    token_id: str
    account: str
    name: str


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ctx: Annotated[ApiContext, Depends(context)],
) -> Caller:
    if credentials is None:
        raise unauthorized("no bearer token: send Authorization: Bearer opt_<id>_<secret>")
    token = parse_token(credentials.credentials)
    if token is None:
        raise unauthorized("not an optout API token (opt_<id>_<secret>)")
    stored = await ctx.find_token(token.token_id)
    if not matches(token.secret, stored.secret_sha256 if stored is not None else _NO_HASH) or stored is None:
        raise unauthorized("unknown token")
    if stored.revoked:
        raise unauthorized(f"token {stored.token_id} was revoked")
    wait = ctx.limiter.allow(stored.token_id)
    if wait is not None:
        raise ProblemError(
            429,
            f"token {stored.token_id} is over {ctx.limiter.rate:g} requests/s (burst {ctx.limiter.burst})",
            headers={"Retry-After": retry_after(wait)},
        )
    now = ctx.clock()
    if now - ctx.touched.get(stored.token_id, -TOUCH_EVERY - 1) > TOUCH_EVERY:
        ctx.touched[stored.token_id] = now
        await _touch(ctx, stored.token_id)  # once a minute per token: awaited, no task to outlive the pool
    return Caller(stored.token_id, stored.account_id, stored.name)


async def _touch(ctx: ApiContext, token_id: str) -> None:
    try:
        await ctx.tokens.touch(token_id)
    except Exception as exc:  # a bookkeeping write: never fail or log a request for it
        log.debug("last_used_at of token %s not written: %s", token_id, exc)


Authenticated = Annotated[Caller, Depends(caller)]
