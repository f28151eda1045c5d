"""The dashboard across the 2025 reform, in a real browser: legacy Yên Bái teams registered on
the old map are counted in the 2025 view of Lào Cai after one press on the edition switch, and
the merged commune's page lists the legacy communes it came from, each a link to the old map."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from tests.e2e.accessibility import assert_accessible
from tests.e2e.api import ok
from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import ARTIFACTS, browser, cell, covered, open_page, register_team
from tests.factories import LEGACY_COMMUNE
from tests.waiting import wait_until

__all__ = ["browser"]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAO_CAI, LANG_THIP_2025 = "15", "04381"  # Xã Lang Thíp (legacy 04378) went whole into 04381


async def figures(aggregator: httpx.AsyncClient, code: str) -> dict[str, Any]:
    body: dict[str, Any] = await ok(
        await aggregator.get(f"/v1/coverage/{code}", params={"edition": "2025"})
    )
    return body


async def test_the_edition_switch_shows_legacy_teams_on_the_2025_map(
    stack: Stack, browser: Browser
) -> None:
    for edition in ("legacy", "2025"):
        loaded = await stack.cdtt("units", "load", "--edition", edition, "--province", "15")
        assert loaded.returncode == 0, loaded.stderr
    async with stack.client("registry") as registry, stack.client("aggregator") as aggregator:
        await register_team(registry, LEGACY_COMMUNE, 3)
        for name, size in (("Thôn Khe Cạn", 4), ("Bản Tát", 5)):
            body = {"parent_code": LEGACY_COMMUNE, "name": name, "edition": "legacy"}
            village = await ok(await registry.post("/v1/units", json=body), 201)
            await register_team(registry, village["code"], size)

        async def counted() -> dict[str, Any] | None:
            commune = await figures(aggregator, LANG_THIP_2025)
            return commune if commune["teams"] == 3 else None

        commune = await wait_until(counted, timeout=60, message="legacy teams on the 2025 map")
        province = await figures(aggregator, LAO_CAI)

    assert commune["members"] == 12
    assert commune["coverage"]["village"] == {"covered": 2, "total": 2}
    came_from = {item["code"]: item for item in commune["came_from"]}
    assert came_from[LEGACY_COMMUNE]["name"] == "Xã Lang Thíp"

    page = await open_page(
        browser,
        f"{stack['aggregator'].url}/?edition=legacy",
        viewport={"width": 1280, "height": 900},
    )
    assert await page.is_hidden("#came-from")
    # One press on the switch: the 2025 map, where the legacy teams are counted.
    await page.click('button.edition[data-edition="2025"]')
    await page.wait_for_function(
        "new URLSearchParams(location.search).get('edition') === '2025'"
        " && document.querySelector('[data-cell=\"row:15:teams\"]') !== null"
    )
    assert await cell(page, f"row:{LAO_CAI}:teams") == "3"
    await page.get_by_role("link", name=province["name"], exact=True).click()
    await page.wait_for_selector(f'tr[data-code="{LANG_THIP_2025}"]')
    # Lào Cai itself came from legacy Lào Cai (10) and Yên Bái (15).
    assert await page.locator("#came-from-list li").count() == 2
    assert await cell(page, f"row:{LANG_THIP_2025}:teams") == "3"
    await page.get_by_role("link", name=commune["name"], exact=True).click()
    await page.wait_for_function(
        "name => document.querySelector('h2').textContent === name", arg=commune["name"]
    )
    assert await page.is_visible("#came-from")
    assert await cell(page, "head:members") == "12"
    assert await covered(page, "head:village") == "2/2"

    listed = await page.locator("#came-from-list li").evaluate_all(
        "items => items.map((li) => li.dataset.code)"
    )
    assert listed == sorted(came_from)
    await page.screenshot(path=ARTIFACTS / "dashboard-came-from.png", full_page=True)
    await assert_accessible(page, "2025 commune with its legacy communes")

    # Each legacy commune is one press away on the old map, where its own teams are.
    await page.locator("#came-from").get_by_role("link", name="Xã Lang Thíp").click()
    await page.wait_for_function("document.querySelector('h2').textContent === 'Xã Lang Thíp'")
    assert "edition=legacy" in page.url
    assert f"unit={LEGACY_COMMUNE}" in page.url
    assert await page.is_hidden("#came-from")
    assert await covered(page, "head:village") == "2/2"
    assert not page.errors  # type: ignore[attr-defined]
