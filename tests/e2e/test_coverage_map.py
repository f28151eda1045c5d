"""The dashboard's coverage map in Chromium, on every 2025 unit: dots, live colour, drill-down.

All 34 provinces and 3,321 communes of the 2025 map are loaded (`cdtt units load`), with
their centres from the vietnamadminunits data file. The national map must draw one dot per
commune the API places, turn Mậu A's dot covered when a team registers there (no reload),
and open Mậu A's page when its dot is clicked. The map sits beside the table on a wide
screen and above it on a phone (390 px, nothing wider than the screen). Every view passes
axe-core (WCAG 2.1 AA).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.accessibility import assert_accessible
from tests.e2e.api import ok
from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import ARTIFACTS, browser, open_page
from tests.factories import make_members
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

__all__ = ["browser"]

MAU_A = "04375"
COMMUNES_2025 = 3_321


async def map_points(stack: Stack, parent: str | None = None) -> list[list[Any]]:
    params = {"edition": "2025"} | ({"parent": parent} if parent else {})
    async with stack.client("aggregator") as aggregator:
        body = await ok(await aggregator.get("/v1/coverage/map", params=params))
    points: list[list[Any]] = body["points"]
    return points


async def dots(page: Page) -> int:
    return await page.locator("#map-svg circle.dot").count()


async def boxes(page: Page) -> tuple[dict[str, float], dict[str, float]]:
    """Where the map and the table are drawn on the page."""
    map_box = await page.locator("#map-section").bounding_box()
    table_box = await page.locator("#table-section").bounding_box()
    assert map_box is not None
    assert table_box is not None
    return dict(map_box), dict(table_box)


async def test_the_national_map_draws_every_commune_and_follows_a_new_team(
    stack: Stack, browser: Browser
) -> None:
    loaded = await stack.cdtt("units", "load", "--edition", "2025", limit_seconds=300)
    assert loaded.returncode == 0, loaded.stderr

    async def all_placed() -> bool:
        return len(await map_points(stack)) == COMMUNES_2025

    await wait_until(all_placed, timeout=120, interval=0.5, message="every 2025 commune placed")
    points = {row[0]: row for row in await map_points(stack)}
    province = points[MAU_A][4]

    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    page = await open_page(
        browser,
        f"{stack['aggregator'].url}/?edition=2025",
        viewport={"width": 1280, "height": 1000},
    )
    await page.wait_for_selector("#map-svg circle.dot")
    drawn_after = time.monotonic() - started
    assert await dots(page) == len(points) == COMMUNES_2025
    assert await page.locator("#map-svg circle.dot.covered").count() == 0
    assert await page.text_content("#map-uncovered") == "Chưa có tổ: 3.321"
    map_box, table_box = await boxes(page)
    assert map_box["x"] + map_box["width"] <= table_box["x"], "the map sits beside the table"
    await page.screenshot(path=ARTIFACTS / "map-national.png", full_page=True)
    await assert_accessible(page, "national")

    # On a phone the map stacks above the table and nothing runs off the side of the screen.
    phone = await open_page(
        browser, f"{stack['aggregator'].url}/?edition=2025", viewport={"width": 390, "height": 844}
    )
    await phone.wait_for_selector("#map-svg circle.dot")
    map_box, table_box = await boxes(phone)
    assert map_box["y"] + map_box["height"] <= table_box["y"], "the map stacks above the table"
    overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the phone view is {overflow} px wider than the screen"
    await phone.screenshot(path=ARTIFACTS / "map-phone.png", full_page=True)
    await assert_accessible(phone, "national, on a phone")
    assert not phone.errors, phone.errors  # type: ignore[attr-defined]
    await phone.close()

    # A team registered through the registry turns Mậu A's dot covered, without a reload.
    await page.evaluate("window.sameDocument = true")
    async with stack.client("registry") as registry:
        body = {"unit_code": MAU_A, "members": make_members(4), "edition": "2025"}
        await ok(await registry.post("/v1/teams", json=body), 201)
    await page.wait_for_selector(f'#map-svg circle.dot.covered[data-code="{MAU_A}"]')
    assert await page.evaluate("window.sameDocument") is True
    assert await page.text_content("#map-covered") == "Có tổ: 1"
    await page.locator("#map-section").screenshot(path=ARTIFACTS / "map-section.png")

    # Hovering a dot names the commune and its figures.
    await page.locator(f'circle[data-code="{MAU_A}"]').hover(force=True)
    assert await page.text_content("#map-tip") == "Xã Mậu A: 1 tổ, 4 thành viên"

    # Its province: the map zooms to the province's communes only.
    await page.goto(f"{stack['aggregator'].url}/?edition=2025&unit={province}")
    await page.wait_for_function(
        "n => document.querySelectorAll('#map-svg circle.dot').length === n",
        arg=len(await map_points(stack, province)),
    )
    await page.screenshot(path=ARTIFACTS / "map-province.png", full_page=True)
    await assert_accessible(page, "province")

    # Clicking the dot opens the commune's page, its dot ringed on the map.
    await page.locator(f'circle[data-code="{MAU_A}"]').click(force=True)
    await page.wait_for_function(
        "code => new URLSearchParams(location.search).get('unit') === code", arg=MAU_A
    )
    await page.wait_for_function("document.querySelector('h2').textContent === 'Xã Mậu A'")
    await page.wait_for_selector(f'circle.current[data-code="{MAU_A}"]')
    await assert_accessible(page, "commune")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    (ARTIFACTS / "map.json").write_text(json.dumps({"national_drawn_s": round(drawn_after, 3)}))
