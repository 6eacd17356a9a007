"""The opt-out page in a real headless browser (Debian's chromium, driven by Playwright) against a
real uvicorn server, broker and Postgres: load the page, press the button, read the result, and
confirm again to get the "already used" page. Screenshots go to the test's tmp dir.

Chromium comes from Debian (``make browser`` installs it, as root); Playwright's own browser
download is never used. Without /usr/bin/chromium the test is skipped with one line saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.integration.helpers import connection, read_topic, settings_for
from worker.api.links import create_links_app
from worker.classify.links import LinkSecret, encode, make_link
from worker.stream.topics import Topics

pytestmark = pytest.mark.integration

SECRET = "browser-test-link-secret-0123456789abcdef"
CHROMIUM = os.environ.get("OPTOUT_TEST_CHROMIUM", "/usr/bin/chromium")
#: The flags a sandboxed, offline machine needs (no sandbox as root, no calls home).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: a loaded 2-core machine starts chromium slowly; nothing here measures time.
WAIT_MS = 60_000


@asynccontextmanager
async def _server(app: FastAPI) -> AsyncIterator[str]:
    """uvicorn on a free port of 127.0.0.1 in this event loop; its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


async def test_the_page_in_a_real_browser_confirms_once(
    broker: str, topics: Topics, group_suffix: str, database_url: str, tmp_path: Path
) -> None:
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        pytest.skip(f"no chromium at {CHROMIUM}: run `make browser` as root (apt-get install chromium)")
    from playwright.async_api import async_playwright

    settings = settings_for(broker, topics, group_suffix, OPTOUT_LINK_SECRET=SECRET)
    link = make_link(
        {"address": "+447700900123", "account": "acme", "category": "marketing"}, int(time.time()) + 3600
    )
    token = encode(link, LinkSecret(SECRET.encode()))
    app = create_links_app(settings, database_url)
    async with _server(app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=WAIT_MS
        )
        try:
            context = await browser.new_context(locale="es-ES", viewport={"width": 390, "height": 700})
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            response = await page.goto(f"{base}/u/{token}", wait_until="load")
            assert response is not None
            assert response.status == 200
            assert await page.get_attribute("html", "lang") == "es"
            heading = page.get_by_role("heading", level=1)
            assert await heading.inner_text() == "Darse de baja"
            button = page.get_by_role("button", name="Sí, darme de baja")
            await page.screenshot(path=str(tmp_path / "1-confirm.png"), full_page=True)
            # A second tab with the same page, confirmed after the first: a second confirm.
            second = await context.new_page()
            second.set_default_timeout(WAIT_MS)
            await second.goto(f"{base}/u/{token}", wait_until="load")

            async with page.expect_navigation(wait_until="load"):
                await button.click()
            assert await heading.inner_text() == "Se ha dado de baja"
            assert "mensajes publicitarios" in await page.locator("main").inner_text()
            assert await page.get_by_role("button").count() == 0
            await page.screenshot(path=str(tmp_path / "2-done.png"), full_page=True)

            async with second.expect_navigation(wait_until="load"):
                await second.get_by_role("button", name="Sí, darme de baja").click()
            assert await second.get_by_role("heading", level=1).inner_text() == "Ya se ha dado de baja"
            await second.screenshot(path=str(tmp_path / "3-reused.png"), full_page=True)
            # Opening the used link again shows the same page, without a form.
            await page.goto(f"{base}/u/{token}", wait_until="load")
            assert await heading.inner_text() == "Ya se ha dado de baja"
            assert await page.locator("form").count() == 0
        finally:
            await browser.close()

    records = await read_topic(broker, topics.changes)
    assert len(records) == 1
    async with connection(database_url) as conn:
        assert await conn.fetchval("SELECT count(*) FROM used_links") == 1
    keep = os.environ.get("LINKS_SCREENSHOTS_DIR")  # to look at them after the run (tmp_path goes)
    if keep:
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, Path(keep) / shot.name)
