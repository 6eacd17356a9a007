"""``GET /u/{token}`` and ``POST /u/{token}``: the opt-out link's page and its confirmation.

GET only shows the question: link scanners and message previews fetch links, and a fetch must
never unsubscribe anyone. POST (the page's button) confirms, in this order:

1. the token is checked (:func:`worker.classify.links.decode`): malformed or forged -> 400,
   expired -> 410, and nothing is written;
2. the link's id is claimed in ``used_links`` (one ``INSERT ... ON CONFLICT DO NOTHING``): a link
   claimed before -> 409, nothing produced. This comes before producing, so two racing clicks
   produce once;
3. the block (reason ``link``, built like ``optout block``'s by
   :func:`worker.classify.manual.manual_event`, keyed by its block identity) is produced to the
   change topic and acknowledged -> 200 and the result page.

If producing fails (the broker is down, or refuses), the claim is released (deleted, only if it is
still this request's own) and the page says to try again (503): the subscriber's opt-out must not
be lost behind a "link already used". If the produce failed only in appearance (acknowledgement
lost) and the subscriber confirms again, the block is produced twice with two event ids: two
history rows of the same block, which changes nothing else. If releasing fails too (Postgres went
down at the same moment) the link stays used without its block; that is logged as an error with
the link id (never the token) for an operator to block by hand.

The router takes what it needs (the secret, a Store, a send function, the change topic), so the
API app mounts it; :func:`create_links_app` is a standalone app for development and tests.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from worker.classify.links import REASON_LINK, Link, LinkError, LinkProblem, LinkSecret, decode
from worker.classify.manual import manual_event
from worker.config import Settings
from worker.errors import OptoutError
from worker.events.inbound import format_instant
from worker.events.outgoing import encode_change
from worker.model import Category
from worker.store.links import claim_link, link_used, release_link
from worker.store.postgres import Store
from worker.stream.produce import Record

from .link_pages import Page, choose_language, render

log = logging.getLogger("optout.links")

#: Produces records to Kafka and returns once each is acknowledged; raises an OptoutError otherwise.
Send = Callable[[list[Record]], Awaitable[None]]

_STATUS = {
    Page.CONFIRM: 200,
    Page.DONE: 200,
    Page.MALFORMED: 400,
    Page.FORGED: 400,
    Page.EXPIRED: 410,
    Page.REUSED: 409,
    Page.UNAVAILABLE: 503,
}
_PROBLEM_PAGE = {
    LinkProblem.MALFORMED: Page.MALFORMED,
    LinkProblem.FORGED: Page.FORGED,
    LinkProblem.EXPIRED: Page.EXPIRED,
}
#: The token in the address is a capability: no caching, no Referer carrying it elsewhere, no
#: framing (click-jacking the button), nothing loaded or run but the page's own inline style.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}


def links_router(
    secret: LinkSecret,
    store: Store,
    send: Send,
    topic: str,
    *,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The two routes of ``/u/{token}``; ``topic``: the change topic, ``clock``: unix seconds."""
    router = APIRouter(tags=["opt-out links"])

    def page(which: Page, request: Request, link: Link | None = None) -> HTMLResponse:
        language = choose_language(request.headers.get("accept-language"))
        change = link.change if link is not None else None
        body = render(
            which,
            language,
            address=change.address if change else "",
            category=change.category if change else Category.ALL,
        )
        headers = HEADERS | {"Content-Language": language, "Vary": "Accept-Language"}
        return HTMLResponse(body, status_code=_STATUS[which], headers=headers)

    def check(token: str) -> Link | Page:
        try:
            return decode(token, secret, int(clock()))
        except LinkError as exc:
            return _PROBLEM_PAGE[exc.problem]

    @router.get("/u/{token}", response_class=HTMLResponse, summary="The opt-out link's confirmation page")
    async def show(token: str, request: Request) -> HTMLResponse:
        link = check(token)
        if isinstance(link, Page):
            return page(link, request)
        try:
            used = await link_used(store, link.link_id)
        except OptoutError as exc:
            log.warning("opt-out link page: %s", exc)
            return page(Page.UNAVAILABLE, request)
        return page(Page.REUSED if used else Page.CONFIRM, request, link)

    @router.post("/u/{token}", response_class=HTMLResponse, summary="Confirm the opt-out: block")
    async def confirm(token: str, request: Request) -> HTMLResponse:
        link = check(token)
        if isinstance(link, Page):
            return page(link, request)
        try:
            used_at = await claim_link(store, link.link_id, link.change.scope.account_id)
        except OptoutError as exc:
            log.warning("opt-out link %s: %s", link.link_id, exc)
            return page(Page.UNAVAILABLE, request)
        if used_at is None:
            return page(Page.REUSED, request, link)
        now = format_instant(datetime.fromtimestamp(clock(), UTC))
        change = replace(link.change, note=f"opt-out link {link.link_id}")
        key, event = manual_event(change, now, reason=REASON_LINK)
        try:
            await send([(topic, key, encode_change(event, now))])
        except Exception as exc:
            await _release(store, link, used_at, exc)
            return page(Page.UNAVAILABLE, request)
        log.info("opt-out link %s confirmed: block %s", link.link_id, event.event_id)
        return page(Page.DONE, request, link)

    return router


async def _release(store: Store, link: Link, used_at: datetime, exc: Exception) -> None:
    try:
        await release_link(store, link.link_id, used_at)
    except OptoutError as again:
        log.error(
            "opt-out link %s of account %s: the block was not produced (%s) and the link could not be "
            "released (%s): it stays used without its block; block the address by hand",
            link.link_id,
            link.change.scope.account_id,
            exc,
            again,
        )
        return
    log.warning(
        "opt-out link %s: the block was not produced (%s); the subscriber may retry", link.link_id, exc
    )


def create_links_app(
    settings: Settings, database_url: str, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """A standalone app serving only ``/u/{token}`` (development and tests; the API app mounts
    :func:`links_router` itself). The secret is checked here, before anything connects."""
    from worker.ops.manual import open_producer, send_acknowledged

    secret = settings.link_signing_secret()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer, _ = await open_producer(settings, None)
        try:
            async with await Store.connect(database_url, min_size=1, max_size=4) as store:

                async def send(records: list[Record]) -> None:
                    await send_acknowledged(producer, records, settings)

                app.include_router(links_router(secret, store, send, settings.topic_changes, clock=clock))
                yield
        finally:
            await producer.stop()

    return FastAPI(title="optout-worker opt-out links", lifespan=lifespan, openapi_url=None)
