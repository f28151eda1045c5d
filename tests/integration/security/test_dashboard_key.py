"""The dashboard with auth on, in Debian's Chromium: it asks for an operator key, keeps it in
sessionStorage only, shows the figures, and follows live changes over the cookie-keyed stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.settings import Settings
from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import chromium
from tests.factories import LEGACY_DISTRICT, make_members
from tests.integration.security.conftest import make_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def stack(secured: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with Stack(secured, tmp_path) as running:
        await running.migrate()
        loaded = await running.cdtt("units", "load", "--edition", "legacy", "--province", "15")
        assert loaded.returncode == 0, loaded.stderr
        await running.start("registry")
        await running.start("aggregator")
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_the_dashboard_asks_for_a_key_then_shows_and_follows_the_figures(
    stack: Stack, browser: Browser, auth_engine: AsyncEngine
) -> None:
    operator = await make_key(auth_engine, "operator")
    admin = await make_key(auth_engine, "admin")
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids.
    page = await browser.new_page(bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{stack['aggregator'].url}/?edition=legacy&unit=15")

    await page.wait_for_selector("#key-form")
    assert "API" in (await page.text_content("#key-reason") or "")
    await page.fill("#key-input", "cdtt_000000000000_" + "x" * 43)
    await page.click("#key-form button[type=submit]")
    await page.wait_for_function(
        "document.querySelector('#key-reason')?.textContent.includes('unknown API key')"
    )

    await page.fill("#key-input", operator.text)
    await page.click("#key-form button[type=submit]")
    await page.wait_for_selector("#live[data-state=live]")
    await page.wait_for_function("!document.querySelector('#key-form')")
    assert await page.text_content('[data-cell="head:teams"]') == "0"

    stored = await page.evaluate("[sessionStorage.getItem('cdtt.apiKey'), localStorage.length]")
    assert stored == [operator.text, 0]
    # The live cookie lives only while a stream opens.
    cookies = await page.context.cookies()
    assert [c for c in cookies if c["name"] == "cdtt_live_key"] == []

    # A team registered now reaches the open page through the live stream.
    async with httpx.AsyncClient(base_url=stack["registry"].url) as registry:
        body = {"unit_code": LEGACY_DISTRICT, "members": make_members(3), "edition": "legacy"}
        created = await registry.post("/v1/teams", json=body, headers=admin.headers)
        assert created.status_code == 201, created.text
    await page.wait_for_function(
        "document.querySelector('[data-cell=\"head:teams\"]')?.textContent === '1'",
        timeout=15_000,
    )
    assert errors == []
    await page.close()
