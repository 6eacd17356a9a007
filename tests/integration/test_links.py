"""Opt-out links end to end (no browser): ``optout link`` makes one, ``/u/{token}`` shows and
confirms it against the real broker and Postgres, the projector stores the block (reason link)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.integration.helpers import connection, env_for, read_topic, settings_for
from worker.api.links import create_links_app, links_router
from worker.classify.links import LinkSecret, encode, make_link
from worker.config import Settings
from worker.errors import ServiceUnavailableError
from worker.events.schemas import CHANGE, validator
from worker.store.postgres import Store
from worker.stream.produce import Record
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

SECRET = "integration-test-link-secret-0123456789"
ADDRESS = "+447700900123"


def _settings(broker: str, topics: Topics, suffix: str) -> Settings:
    return settings_for(broker, topics, suffix, OPTOUT_LINK_SECRET=SECRET)


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://links.test") as client:
            yield client


def _token(expires_in: int = 3600, **fields: str) -> str:
    import time

    link = make_link({"address": ADDRESS, "account": "acme", **fields}, int(time.time()) + expires_in)
    return encode(link, LinkSecret(SECRET.encode()))


async def _used_links(database_url: str) -> int:
    async with connection(database_url) as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM used_links")
        return count


async def test_a_link_made_by_the_cli_is_shown_confirmed_once_and_projected(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    env = env_for(broker, topics, group_suffix, database_url) | {"OPTOUT_LINK_SECRET": SECRET}
    made = subprocess.run(
        [sys.executable, "-m", "worker", "link", "+44 7700 900123", "--account", "acme", "--sender", "ACME",
         "--category", "marketing", "--ttl", "7d", "--base-url", "https://u.example.com/"],
        env=os.environ | env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    url = made.stdout.decode().strip()
    assert url.startswith("https://u.example.com/u/"), url
    assert len(url) < 100, url
    path = url.removeprefix("https://u.example.com")

    settings = _settings(broker, topics, group_suffix)
    async with _client(create_links_app(settings, database_url)) as client:
        page = await client.get(path, headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
        assert page.status_code == 200
        assert '<html lang="fr">' in page.text
        assert "Oui, me désabonner" in page.text
        assert "messages publicitaires" in page.text
        assert "0123" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert await _used_links(database_url) == 0  # showing the page changes nothing

        done = await client.post(path)
        assert done.status_code == 200
        assert "You are unsubscribed" in done.text
        again = await client.post(path, headers={"Accept-Language": "es"})
        assert again.status_code == 409
        assert "Ya se ha dado de baja" in again.text
        shown = await client.get(path)
        assert shown.status_code == 409
        assert "<form" not in shown.text

    records = await read_topic(broker, topics.changes)
    assert len(records) == 1
    event = orjson.loads(records[0].value)
    assert list(validator(CHANGE).iter_errors(event)) == []
    assert (event["reason"], event["source"], event["action"], event["category"]) == (
        "link", None, "block", "marketing",
    )  # fmt: skip
    assert (event["address"], event["scope"]["level"], event["scope"]["sender"]) == (
        ADDRESS,
        "sender",
        "ACME",
    )
    assert event["note"].startswith("opt-out link ")

    await run_projector(settings, database_url, burst=True)
    async with await Store.connect(database_url) as store:
        blocks = await store.check(ADDRESS, "acme", sender="ACME", channel="sms")
    assert [(b["reason"], b["category"], b["event_id"]) for b in blocks] == [
        ("link", "marketing", event["event_id"])
    ]


async def test_forged_expired_and_malformed_tokens_get_a_page_and_change_nothing(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    settings = _settings(broker, topics, group_suffix)
    good = _token()
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    other_key = encode(
        make_link({"address": ADDRESS, "account": "acme"}, 2**31),
        LinkSecret(b"another secret, 32 bytes long..."),
    )
    expired = _token(expires_in=60)
    later = create_links_app(settings, database_url, clock=lambda: 4_000_000_000)
    async with _client(create_links_app(settings, database_url)) as client, _client(later) as future:
        for method in ("GET", "POST"):
            for path, status, text in (
                (f"/u/{flipped}", 400, "This link does not work"),
                (f"/u/{other_key}", 400, "This link does not work"),
                ("/u/not-a-token", 400, "This link does not work"),
                (f"/u/{good}%20", 400, "This link does not work"),
            ):
                response = await client.request(method, path)
                assert (response.status_code, text in response.text) == (status, True), (method, path)
            response = await future.request(method, f"/u/{expired}", headers={"Accept-Language": "de"})
            assert response.status_code == 410
            assert "Dieser Link ist abgelaufen" in response.text
    assert await _used_links(database_url) == 0
    assert await read_topic(broker, topics.changes) == []


async def test_a_double_click_produces_once(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    settings = _settings(broker, topics, group_suffix)
    token = _token(channel="sms")
    async with _client(create_links_app(settings, database_url)) as client:
        answers = await asyncio.gather(*(client.post(f"/u/{token}") for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert len(await read_topic(broker, topics.changes)) == 1
    assert await _used_links(database_url) == 1


async def test_a_failed_produce_releases_the_link_so_the_subscriber_can_retry(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    """The broker's failure is simulated by the send function (the router's seam); Postgres is real."""
    token = _token()
    sent: list[Record] = []
    failing = True

    async def send(records: list[Record]) -> None:
        if failing:
            raise ServiceUnavailableError("Kafka at k:9092: KafkaConnectionError")
        sent.extend(records)

    def app_with(store: Store, clock: Callable[[], float]) -> FastAPI:
        app = FastAPI()
        app.include_router(links_router(LinkSecret(SECRET.encode()), store, send, "changes", clock=clock))
        return app

    import time

    async with await Store.connect(database_url) as store:
        transport = httpx.ASGITransport(app=app_with(store, time.time))
        async with httpx.AsyncClient(transport=transport, base_url="http://links.test") as client:
            failed = await client.post(f"/u/{token}")
            assert failed.status_code == 503
            assert "Please try again" in failed.text
            assert await _used_links(database_url) == 0
            assert sent == []
            failing = False
            retried = await client.post(f"/u/{token}")
            assert retried.status_code == 200
    assert [(topic, orjson.loads(value)["reason"]) for topic, _, value in sent] == [("changes", "link")]
    assert await _used_links(database_url) == 1
