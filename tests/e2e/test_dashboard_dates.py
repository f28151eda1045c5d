"""The dashboard's date control in a real browser: the figures of the day chosen, then today's.

Two teams with dates go through the registry: one on Xã Lang Thíp (04378) from 2024-03-01,
dissolved on 2025-01-15, and one on a village of it from 2025-06-10. Moving the date shows
each day's figures (headline, table, CSV link, monthly chart), live changes are not laid
over a past date, and back on today the live figures return.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.accessibility import assert_accessible
from tests.e2e.api import ok
from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import ARTIFACTS, browser, cell, covered, open_page
from tests.factories import LEGACY_COMMUNE, LEGACY_PROVINCE, make_members
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

__all__ = ["browser"]  # the fixture, shared with test_dashboard
LEGACY = {"edition": "legacy"}


async def team(registry: Any, unit: str, members: int, established_on: str) -> dict[str, Any]:
    body = {
        "unit_code": unit,
        "members": make_members(members),
        "edition": "legacy",
        "established_on": established_on,
    }
    created: dict[str, Any] = await ok(await registry.post("/v1/teams", json=body), 201)
    return created


async def move_date(page: Page, day: str, teams: str) -> None:
    """Set the date control and wait until the headline shows that day's teams."""
    await page.fill("#as-of-date", day)
    await page.dispatch_event("#as-of-date", "change")
    await page.wait_for_selector(f'body[data-as-of="{day}"]')
    assert new_url_day(page.url) == day
    assert await cell(page, "head:teams") == teams


def new_url_day(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("as_of", [None])[0]


async def test_the_date_control_shows_the_figures_of_that_day(
    stack: Stack, browser: Browser
) -> None:
    loaded = await stack.cdtt("units", "load", "--edition", "legacy", "--province", "15")
    assert loaded.returncode == 0, loaded.stderr
    async with stack.client("registry") as registry, stack.client("aggregator") as aggregator:
        body = {"parent_code": LEGACY_COMMUNE, "name": "Thôn Khe Cỏ", "edition": "legacy"}
        village = (await ok(await registry.post("/v1/units", json=body), 201))["code"]
        early = await team(registry, LEGACY_COMMUNE, 3, "2024-03-01")
        await ok(
            await registry.post(
                f"/v1/teams/{early['team_id']}/dissolve",
                json={"edition": "legacy", "dissolved_on": "2025-01-15"},
            )
        )
        await team(registry, village, 2, "2025-06-10")

        async def settled() -> bool:
            unit = await ok(await aggregator.get(f"/v1/coverage/{LEGACY_PROVINCE}", params=LEGACY))
            then = await ok(
                await aggregator.get(
                    f"/v1/coverage/{LEGACY_PROVINCE}", params=LEGACY | {"as_of": "2024-06-30"}
                )
            )
            return (unit["teams"], unit["members"], then["teams"]) == (1, 2, 1)

        await wait_until(settled, timeout=60, interval=0.1, message="dated teams in the figures")

        ARTIFACTS.mkdir(exist_ok=True)
        base = stack["aggregator"].url
        page = await open_page(
            browser,
            f"{base}/?edition=legacy&unit={LEGACY_PROVINCE}",
            viewport={"width": 1280, "height": 900},
        )
        assert await page.text_content('label[for="as-of-date"]') == "Số liệu đến ngày"
        today = await page.input_value("#as-of-date")
        assert (await cell(page, "head:teams"), await cell(page, "head:members")) == ("1", "2")

        # Mid-2024: the first team, its three members, its commune covered; the CSV follows.
        await move_date(page, "2024-06-30", "1")
        assert await cell(page, "head:members") == "3"
        assert await page.locator("#series-chart svg polyline").count() == 4  # teams, 3 levels
        assert (await covered(page, "head:commune")).startswith("1/")
        assert await page.get_attribute("#live", "data-state") == "past"
        export = await page.get_attribute("#export", "href")
        assert export is not None
        assert "as_of=2024-06-30" in export
        csv_answer = await aggregator.get(export)
        assert csv_answer.status_code == 200
        assert csv_answer.headers["x-as-of-date"] == "2024-06-30"
        await page.screenshot(path=ARTIFACTS / "dashboard-as-of.png", full_page=True)
        await assert_accessible(page, "province, as of 2024-06-30")

        # Before any team, and between the two teams: nothing.
        await move_date(page, "2024-02-29", "0")
        await move_date(page, "2025-03-01", "0")
        # A team registered now is live news: not laid over a past date.
        await team(registry, LEGACY_COMMUNE, 4, today)

        async def live_has_it() -> bool:
            unit = await ok(await aggregator.get(f"/v1/coverage/{LEGACY_PROVINCE}", params=LEGACY))
            return bool(unit["teams"] == 2)

        await wait_until(live_has_it, timeout=30, message="the new team in the live figures")
        assert await cell(page, "head:teams") == "0"

        # Back to today: live again, with today's figures.
        await page.fill("#as-of-date", today)
        await page.dispatch_event("#as-of-date", "change")
        await page.wait_for_selector('body[data-as-of="today"]')
        await page.wait_for_selector("#live[data-state=live]")
        assert new_url_day(page.url) is None
        assert await cell(page, "head:teams") == "2"
        assert "as_of" not in (await page.get_attribute("#export", "href") or "")
        await assert_accessible(page, "province, today")
        assert not page.errors, page.errors  # type: ignore[attr-defined]
