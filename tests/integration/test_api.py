"""The HTTP API on the real broker and Postgres: the app in-process (httpx's ASGI transport) with a
real Store and a real producer; the projector in burst mode between a change and its check; and
``optout api`` / ``optout token`` as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.helpers import connection, env_for, read_topic, settings_for, spawn, values, wait_until
from worker.api.app import create_app
from worker.api.ratelimit import RateLimiter
from worker.api.tokens import new_token, secret_hash
from worker.config import Settings
from worker.ops.manual import open_producer
from worker.store.postgres import Store
from worker.store.tokens import TokenStore
from worker.stream.projector import run_projector
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

ADDRESS = "+15550000042"
PROBLEM = "application/problem+json"


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Settings
    database_url: str
    store: Store
    headers: dict[str, dict[str, str]]
    """Authorization headers by name: a and a2 (account acme), b (account globex), revoked (acme)."""

    async def project(self) -> None:
        await run_projector(self.settings, self.database_url, burst=True)

    async def call(self, who: str | None, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = (self.headers[who] if who else {}) | kwargs.pop("headers", {})
        return await self.client.request(method, url, headers=headers, **kwargs)


async def _make_token(store: Store, account: str, name: str) -> tuple[str, str]:
    token = new_token()
    await TokenStore(store).create(token.token_id, account, secret_hash(token.secret), name)
    return token.token_id, str(token)


@contextlib.asynccontextmanager
async def _api(
    broker: str, topics: Topics, suffix: str, database_url: str, limiter: RateLimiter | None = None
) -> AsyncIterator[Api]:
    settings = settings_for(broker, topics, suffix)
    async with await Store.connect(database_url) as store:
        producer, _ = await open_producer(settings, None)
        try:
            headers = {}
            for who, account in (("a", "acme"), ("a2", "acme"), ("b", "globex"), ("revoked", "acme")):
                token_id, text = await _make_token(store, account, f"test {who}")
                headers[who] = {"Authorization": f"Bearer {text}"}
                if who == "revoked":
                    await TokenStore(store).revoke(token_id)
            app = create_app(store, producer, settings, limiter=limiter)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Api(client, settings, database_url, store, headers)
        finally:
            await producer.stop()


@pytest.fixture
async def api(broker: str, topics: Topics, group_suffix: str, database_url: str) -> AsyncIterator[Api]:
    async with _api(broker, topics, group_suffix, database_url) as found:
        yield found


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:optout:problem:")
    assert body["title"]
    assert body["detail"]
    return body


async def test_block_check_list_history_unblock(api: Api) -> None:
    block = await api.call(
        "a",
        "POST",
        "/v1/blocks",
        json={"address": "whatsapp:+1 555 000 0042", "sender": "12345", "channel": "sms", "note": "web form"},
    )
    assert block.status_code == 202, block.text
    accepted = block.json()
    assert (accepted["reason"], accepted["address"], accepted["action"]) == ("api", ADDRESS, "block")
    assert accepted["scope"] == {
        "level": "sender",
        "account_id": "acme",
        "subaccount_id": None,
        "sender": "12345",
        "channel": "sms",
    }
    # The broker acknowledged it before the answer: it is on the change topic, keyed like a STOP.
    [record] = await read_topic(api.settings.kafka_bootstrap, api.settings.topic_changes)
    assert record.key == orjson.dumps(["sender", "acme", None, "12345", "sms", ADDRESS])
    assert values([record])[0]["event_id"] == accepted["event_id"]

    await api.project()
    check = await api.call(
        "a", "GET", "/v1/check", params={"address": ADDRESS, "sender": "12345", "channel": "sms"}
    )
    assert check.status_code == 200, check.text
    result = check.json()
    assert result["blocked"] is True
    assert [(b["reason"], b["note"], b["event_id"]) for b in result["blocks"]] == [
        ("api", "web form", accepted["event_id"])
    ]
    assert result["target"] == {
        "account_id": "acme",
        "subaccount_id": None,
        "sender": "12345",
        "channel": "sms",
        "category": "marketing",
    }
    other = await api.call("a", "GET", "/v1/check", params={"address": ADDRESS, "sender": "99999"})
    assert other.json()["blocked"] is False
    assert [b["event_id"] for b in other.json()["other_blocks"]] == [accepted["event_id"]]

    listed = await api.call("a", "GET", "/v1/blocks")
    assert [b["event_id"] for b in listed.json()["blocks"]] == [accepted["event_id"]]
    assert listed.json()["next_cursor"] is None

    history = await api.call("a", "GET", "/v1/history/whatsapp:+15550000042")
    assert history.status_code == 200, history.text
    assert history.json()["address"] == ADDRESS
    assert [(h["action"], h["reason"], h["note"]) for h in history.json()["history"]] == [
        ("block", "api", "web form")
    ]

    unblock = await api.call(
        "a", "POST", "/v1/unblocks", json={"address": ADDRESS, "sender": "12345", "channel": "sms"}
    )
    assert unblock.status_code == 202, unblock.text
    assert unblock.json()["note"].startswith("API token ")  # no note given: the token says who
    await api.project()
    check = await api.call(
        "a", "GET", "/v1/check", params={"address": ADDRESS, "sender": "12345", "channel": "sms"}
    )
    assert check.json()["blocked"] is False
    assert (await api.call("a", "GET", "/v1/blocks")).json()["blocks"] == []
    actions = [h["action"] for h in (await api.call("a", "GET", f"/v1/history/{ADDRESS}")).json()["history"]]
    assert actions == ["block", "unblock"]


async def test_another_accounts_token_sees_and_changes_nothing_of_it(api: Api) -> None:
    body = {"address": ADDRESS, "channel": "sms", "note": "acme's block"}
    assert (await api.call("a", "POST", "/v1/blocks", json=body)).status_code == 202
    await api.project()
    # The same token holder's second token sees it: tokens are per account, not per token.
    assert (await api.call("a2", "GET", "/v1/check", params={"address": ADDRESS})).json()["blocked"] is True

    check = (await api.call("b", "GET", "/v1/check", params={"address": ADDRESS, "channel": "sms"})).json()
    assert (check["blocked"], check["blocks"], check["other_blocks"]) == (False, [], [])
    assert check["target"]["account_id"] == "globex"
    assert (await api.call("b", "GET", "/v1/blocks")).json() == {"blocks": [], "next_cursor": None}
    filtered = await api.call("b", "GET", "/v1/blocks", params={"address": ADDRESS, "channel": "sms"})
    assert filtered.json()["blocks"] == []
    history = (await api.call("b", "GET", f"/v1/history/{ADDRESS}")).json()
    assert history == {"address": ADDRESS, "history": []}
    # A cursor made from acme's listing does not open acme's rows to globex.
    for _ in range(2):
        await api.call("a", "POST", "/v1/blocks", json=body | {"address": f"{ADDRESS}1"})
    # B's unblock of "the same" block lands in B's account; its block too.
    unblock = await api.call("b", "POST", "/v1/unblocks", json=body)
    assert unblock.status_code == 202
    assert unblock.json()["scope"]["account_id"] == "globex"
    b_block = await api.call("b", "POST", "/v1/blocks", json={"address": "+15550000099"})
    assert b_block.json()["scope"]["account_id"] == "globex"
    await api.project()
    page = (await api.call("a", "GET", "/v1/blocks", params={"limit": 1})).json()
    assert page["next_cursor"] is not None
    crossed = await api.call("b", "GET", "/v1/blocks", params={"cursor": page["next_cursor"]})
    assert crossed.status_code == 200
    assert {b["account_id"] for b in crossed.json()["blocks"]} <= {"globex"}

    a_check = (await api.call("a", "GET", "/v1/check", params={"address": ADDRESS, "channel": "sms"})).json()
    assert a_check["blocked"] is True  # B's unblock did not lift A's block
    a_blocks = (await api.call("a", "GET", "/v1/blocks")).json()["blocks"]
    assert {b["account_id"] for b in a_blocks} == {"acme"}
    assert "+15550000099" not in {b["address"] for b in a_blocks}
    b_blocks = (await api.call("b", "GET", "/v1/blocks")).json()["blocks"]
    assert [(b["account_id"], b["address"]) for b in b_blocks] == [("globex", "+15550000099")]
    a_history = (await api.call("a", "GET", f"/v1/history/{ADDRESS}")).json()["history"]
    assert [(h["action"], h["scope"]["account_id"]) for h in a_history] == [("block", "acme")]


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/check", {"params": {"address": ADDRESS}}),
    ("GET", "/v1/blocks", {}),
    ("GET", f"/v1/history/{ADDRESS}", {}),
    ("POST", "/v1/blocks", {"json": {"address": ADDRESS}}),
    ("POST", "/v1/unblocks", {"json": {"address": ADDRESS}}),
]


async def test_every_route_refuses_a_missing_invalid_or_revoked_token(api: Api) -> None:
    token = api.headers["a"]["Authorization"].removeprefix("Bearer ")
    token_id = token.split("_")[1]
    wrong_secret = f"opt_{token_id}_{'x' * 43}"
    unknown_id = f"opt_{'0' * 16}_{token.split('_', 2)[2]}"
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {wrong_secret}"},
        {"Authorization": f"Bearer {unknown_id}"},
        api.headers["revoked"],
    ]
    for method, url, kwargs in ROUTES:
        for headers in bad_headers:
            response = await api.client.request(method, url, headers=headers, **kwargs)
            body = _problem(response, 401)
            assert body["type"] == "urn:optout:problem:unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert token.split("_", 2)[2] not in response.text
    # Nothing was produced by the refused blocks and unblocks.
    assert await read_topic(api.settings.kafka_bootstrap, api.settings.topic_changes, idle_ms=300) == []
    revoked = await api.call("revoked", "GET", "/v1/blocks")
    assert "revoked" in revoked.json()["detail"]


async def test_errors_are_problem_details(api: Api) -> None:
    body = _problem(await api.call("a", "GET", "/v1/check", params={"address": "+1\x00"}), 422)
    assert body["errors"][0]["field"] == "query.address"
    _problem(await api.call("a", "GET", "/v1/check"), 422)
    both = {"address": ADDRESS, "subaccount": "s", "sender": "x"}
    assert "both" in _problem(await api.call("a", "POST", "/v1/blocks", json=both), 422)["detail"]
    extra = {"address": ADDRESS, "account": "globex"}  # the account is the token's, never the body's
    assert (
        _problem(await api.call("a", "POST", "/v1/blocks", json=extra), 422)["errors"][0]["field"]
        == "body.account"
    )
    _problem(await api.call("a", "POST", "/v1/blocks", json={"address": "x" * 300}), 422)
    _problem(
        await api.call(
            "a",
            "POST",
            "/v1/blocks",
            content=b"{not json",
            headers=api.headers["a"] | {"content-type": "application/json"},
        ),
        422,
    )
    _problem(await api.call("a", "GET", "/v1/blocks", params={"cursor": "garbage!"}), 422)
    _problem(await api.call("a", "GET", "/v1/blocks", params={"limit": 0}), 422)
    _problem(await api.call("a", "GET", "/v1/check", params={"address": ADDRESS, "category": "all"}), 422)
    assert "/v1/nothing" in _problem(await api.call("a", "GET", "/v1/nothing"), 404)["detail"]
    _problem(await api.call("a", "DELETE", "/v1/check"), 405)
    assert await read_topic(api.settings.kafka_bootstrap, api.settings.topic_changes, idle_ms=300) == []


async def test_pages_cover_every_block_once_in_key_order_with_filters(api: Api) -> None:
    made = []
    for i in range(5):
        body = {
            "address": f"+1555000010{i}",
            "channel": "sms" if i % 2 else "*",
            "category": "marketing" if i == 4 else "all",
        }
        response = await api.call("a", "POST", "/v1/blocks", json=body)
        made.append(response.json()["event_id"])
    await api.call("b", "POST", "/v1/blocks", json={"address": "+15550000100"})
    await api.project()
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.call("a", "GET", "/v1/blocks", params=params)).json()
        pages += 1
        seen += page["blocks"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(b["event_id"] for b in seen) == sorted(made)
    assert [b["address"] for b in seen] == sorted(b["address"] for b in seen)
    sms = (await api.call("a", "GET", "/v1/blocks", params={"channel": "sms"})).json()["blocks"]
    assert {b["address"] for b in sms} == {"+15550000101", "+15550000103"}
    marketing = (await api.call("a", "GET", "/v1/blocks", params={"category": "marketing"})).json()["blocks"]
    assert [b["address"] for b in marketing] == ["+15550000104"]
    one = (await api.call("a", "GET", "/v1/blocks", params={"address": "+1 555 000 0100"})).json()["blocks"]
    assert [b["address"] for b in one] == ["+15550000100"]


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    now = [100.0]
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    async with _api(broker, topics, group_suffix, database_url, limiter) as api:
        for _ in range(2):
            assert (await api.call("a", "GET", "/v1/blocks")).status_code == 200
        refused = await api.call("a", "GET", "/v1/blocks")
        assert _problem(refused, 429)["type"] == "urn:optout:problem:rate-limited"
        assert refused.headers["retry-after"] == "1"
        assert (await api.call("a2", "GET", "/v1/blocks")).status_code == 200  # its own bucket
        assert (await api.call("a", "POST", "/v1/blocks", json={"address": ADDRESS})).status_code == 429
        now[0] += 1.0
        assert (await api.call("a", "GET", "/v1/blocks")).status_code == 200


async def test_health_readiness_and_metrics(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reasons": []})
    await api.call("a", "GET", f"/v1/history/{ADDRESS}")
    await api.call(None, "GET", "/v1/blocks")
    text = (await api.client.get("/metrics")).text
    assert 'optout_api_requests_total{method="GET",route="/v1/history/{address}",status="200"} 1.0' in text
    assert 'optout_api_requests_total{method="GET",route="/v1/blocks",status="401"} 1.0' in text
    assert "optout_api_request_duration_seconds_bucket" in text
    assert ADDRESS not in text
    assert (await api.client.get("/openapi.json")).json()["info"]["title"] == "optout-worker API"


async def test_readiness_says_which_service_is_down(
    broker: str, topics: Topics, group_suffix: str, database_url: str
) -> None:
    async with _api(broker, topics, group_suffix, database_url) as api:
        await api.store.close()  # Postgres gone for this app
        ready = await api.client.get("/readyz")
        assert (ready.status_code, ready.json()["reasons"]) == (503, ["Postgres unavailable"])


def _optout(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=os.environ | env,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def test_token_commands_and_the_api_process_stop_cleanly_on_sigterm(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    env = env_for(broker, topics, group_suffix, database_url) | {
        "OPTOUT_API_PORT": "0",
        "OPTOUT_API_HOST": "127.0.0.1",
    }
    created = _optout("token", "create", "--account", "acme", "--name", "billing", env=env)
    assert created.returncode == 0, created.stderr
    made = orjson.loads(created.stdout)
    token, token_id = made["token"], made["token_id"]
    assert token.startswith(f"opt_{token_id}_")
    listed = _optout("token", "list", "--account", "acme", env=env)
    assert [row["token_id"] for row in map(orjson.loads, listed.stdout.splitlines())] == [token_id]
    assert token.split("_", 2)[2].encode() not in listed.stdout  # the secret is shown once only
    assert _optout("token", "create", "--account", "acme", env=env).returncode == 2  # no --name
    assert _optout("token", "revoke", "nope", env=env).returncode == 2

    log = tmp_path / "api.log"
    process = spawn("api", env, log)
    try:

        async def url() -> str | None:
            found = re.search(rb"API on (http://[\d.:]+)", log.read_bytes())
            assert process.poll() is None, log.read_text()
            return found.group(1).decode() if found else None

        base = await wait_until(url, 60, "optout api to listen")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/v1/blocks", headers=headers)).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            revoked = _optout("token", "revoke", token_id, env=env)
            assert revoked.returncode == 0, revoked.stderr

            async def refused() -> bool:
                return (await client.get("/v1/blocks", headers=headers)).status_code == 401

            # The server trusts a verified token for TOKEN_TTL seconds before asking Postgres again.
            await wait_until(refused, 30, "the revoked token to be refused")

            # A request in flight when SIGTERM arrives is answered before the process exits: it
            # waits on a lock held here (a token not cached yet, so the server asks Postgres).
            second = orjson.loads(
                _optout("token", "create", "--account", "acme", "--name", "2", env=env).stdout
            )
            async with connection(database_url) as locker:
                lock = locker.transaction()
                await lock.start()
                await locker.execute("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")
                slow = asyncio.create_task(
                    client.get("/v1/blocks", headers={"Authorization": f"Bearer {second['token']}"})
                )

                async def waiting() -> bool:
                    count: int = await locker.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%api_tokens%' AND pid <> pg_backend_pid()"
                    )
                    return count > 0

                await wait_until(waiting, 30, "the request to wait on the lock")
                process.send_signal(signal.SIGTERM)

                async def shutting_down() -> bool:
                    return b"Shutting down" in log.read_bytes()

                await wait_until(shutting_down, 30, "uvicorn to start its shutdown")
                assert not slow.done()
                await lock.rollback()
            assert (await slow).status_code == 200
        assert await asyncio.to_thread(process.wait, 60) == 0, log.read_text()
        assert "API stopped" in log.read_text()
        assert token.split("_", 2)[2] not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
