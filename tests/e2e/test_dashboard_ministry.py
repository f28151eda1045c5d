"""What the ministry counts, on the dashboard in a real browser: outcome cards and table,
the trained share, a target bar, and a reporting column whose silent teams open in a click.

Two villages of Xã Lang Thíp (04378) get teams; one records support with outcomes this
month (Vietnam), the other records nothing; Huyện Văn Yên (136) gets a target. The page
opened on the district must show all of it, and stay clean under axe (WCAG 2.1 AA).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from playwright.async_api import Browser

from shared.contracts.dates import today_in_vietnam
from tests.e2e.accessibility import assert_accessible
from tests.e2e.api import DIRECTORY_TRAIL_SECONDS, ok
from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import ARTIFACTS, browser, open_page, register_team
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
__all__ = ["browser"]


async def test_dashboard_shows_outcomes_training_a_target_and_silent_teams(
    stack: Stack, browser: Browser
) -> None:
    loaded = await stack.cdtt("units", "load", "--edition", "legacy", "--province", "15")
    assert loaded.returncode == 0, loaded.stderr
    today = today_in_vietnam()
    async with (
        stack.client("registry") as registry,
        stack.client("activity") as activity,
        stack.client("aggregator") as aggregator,
    ):
        villages = []
        for name in ("Thôn Khe Cỏ", "Bản Tát"):
            body = {"parent_code": LEGACY_COMMUNE, "name": name, "edition": "legacy"}
            villages.append((await ok(await registry.post("/v1/units", json=body), 201))["code"])
        reporting, silent = [await register_team(registry, code, 2) for code in villages]
        member = reporting["members"][0]["member_id"]
        await ok(
            await registry.patch(
                f"/v1/teams/{reporting['team_id']}/members/{member}",
                json={"trained_on": "2022-11-30", "edition": "legacy"},
            )
        )
        await ok(
            await registry.put(
                f"/v1/targets/{LEGACY_DISTRICT}",
                params={"edition": "legacy"},
                json={
                    "due": date(today.year, 12, 31).isoformat(),
                    "covered_pct": {"village": 100},
                    "members_trained_pct": 100,
                    "outcomes": {"vneid_activations": 40},
                },
            )
        )
        support = {
            "team_id": reporting["team_id"],
            "edition": "legacy",
            "category": "vneid",
            "occurred_on": today.isoformat(),
            "residents_helped": 12,
            "outcomes": {"vneid_activations": 10, "public_service_dossiers": 3},
        }

        async def recorded() -> Any:
            response = await activity.post("/v1/support-events", json=support)
            return response.status_code == 202  # 404 while the team directory trails

        await wait_until(recorded, timeout=DIRECTORY_TRAIL_SECONDS, interval=0.1)

        async def settled() -> bool:
            body = await ok(
                await aggregator.get(
                    f"/v1/coverage/{LEGACY_DISTRICT}", params={"edition": "legacy"}
                )
            )
            return bool(body["targets"]) and body["support"]["events"] == 1 and body["teams"] == 2

        await wait_until(settled, timeout=60, interval=0.1, message="scenario in the figures")

    url = f"{stack['aggregator'].url}/?edition=legacy&unit={LEGACY_DISTRICT}"
    page = await open_page(browser, url, viewport={"width": 1280, "height": 900})

    # Outcome cards and the per-kind table.
    assert await page.text_content('[data-cell="outcome:vneid_activations"]') == "10"
    assert await page.text_content('[data-cell="outcome:public_service_dossiers:total"]') == "3"
    # One of four members trained, on the members card.
    assert "25" in (await page.text_content('[data-cell="head:members:note"]') or "")
    # The target: a bar per part, the outcome a quarter of the way.
    assert await page.is_visible("#targets-section")
    bars = page.locator("#targets progress")
    assert await bars.count() == 3
    vneid = page.locator('li[data-target="outcomes.vneid_activations"]')
    assert await vneid.locator("progress").get_attribute("value") == "0.25"
    assert "10" in (await vneid.text_content() or "")
    # Reporting this month: the commune's row, its silent team a click away.
    row = page.locator(f'tr[data-code="{LEGACY_COMMUNE}"]')
    assert "1/2" in (await row.locator("td.reporting span").first.text_content() or "")
    silent_list = row.locator(".silent-list")
    assert not await silent_list.is_visible()
    await row.locator("details.silent summary").click()
    assert await silent_list.is_visible()
    assert await silent_list.locator("li").all_text_contents() == [
        f"Tổ {silent['team_id'][:8]} tại {villages[1]}"
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "dashboard-ministry.png", full_page=True)
    await assert_accessible(page, "district with target, outcomes and reporting")
    assert page.errors == []  # type: ignore[attr-defined]
