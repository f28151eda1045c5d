"""The operator dashboard in a real browser (Debian's Chromium through Playwright) on a stack.

Yên Bái (15) is loaded from the official list and villages with teams and support are
registered under Xã Lang Thíp (04378) of Văn Yên (136), one of them named like markup.
The page must show the API's figures, drill down to the commune with a breadcrumb and a
bookmarkable URL, and show a team registered through the registry without a reload; the
time that takes is measured. Its CSV export must hold the API's figures.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from shared.contracts.events.activity import OUTCOME_KINDS
from tests.e2e.accessibility import assert_accessible
from tests.e2e.api import ok, record_support
from tests.e2e.stack import Stack
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, make_members
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# The system's browser (Playwright never downloads one here); .ci/run installs Debian's in CI.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_MACOS = Path("/Applications/Chromium.app/Contents/MacOS/Chromium")


def system_chromium() -> str:
    """The machine's Chromium; missing, a skip that says how to get one (a failure in CI)."""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    if os.access(CHROMIUM_MACOS, os.X_OK):
        return str(CHROMIUM_MACOS)
    message = "no Chromium here: apt-get install chromium (macOS: brew install --cask chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MARKUP_NAME = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
VILLAGE_NAMES = ("Thôn Khe Cỏ", "Bản Tát", "Thôn Đồng Ruộng", "Thôn Làng Câu", MARKUP_NAME)
LIVE_CHANGES = 5
LEVELS = ("province", "district", "commune", "village")


@dataclass
class Scenario:
    villages: dict[str, str]  # code -> name
    with_team: set[str]
    without_team: list[str]


async def register_team(registry: httpx.AsyncClient, unit: str, members: int) -> dict[str, Any]:
    body = {"unit_code": unit, "members": make_members(members), "edition": "legacy"}
    team: dict[str, Any] = await ok(await registry.post("/v1/teams", json=body), 201)
    return team


async def coverage(aggregator: httpx.AsyncClient, code: str = "") -> dict[str, Any]:
    path = f"/v1/coverage/{code}" if code else "/v1/coverage"
    body: dict[str, Any] = await ok(await aggregator.get(path, params={"edition": "legacy"}))
    return body


async def load_scenario(stack: Stack) -> Scenario:
    """Yên Bái's units, villages under Lang Thíp, three of them with teams, some support."""
    loaded = await stack.cdtt("units", "load", "--edition", "legacy", "--province", "15")
    assert loaded.returncode == 0, loaded.stderr
    villages: dict[str, str] = {}
    extra = [f"Thôn Nà {n}" for n in range(1, LIVE_CHANGES + 1)]
    async with (
        stack.client("registry") as registry,
        stack.client("activity") as activity,
        stack.client("aggregator") as aggregator,
    ):
        for name in (*VILLAGE_NAMES, *extra):
            body = {"parent_code": LEGACY_COMMUNE, "name": name, "edition": "legacy"}
            village = await ok(await registry.post("/v1/units", json=body), 201)
            villages[village["code"]] = name
        codes = list(villages)
        sizes = (5, 4, 7)
        teams = [
            await register_team(registry, code, size)
            for code, size in zip(codes, sizes, strict=False)
        ]
        for team, (category, day, residents) in zip(
            teams * 2,
            (
                ("vneid", "2026-08-03", 12),
                ("public_services", "2026-09-10", 7),
                ("cashless_payment", "2026-10-21", 9),
                ("vneid", "2026-10-02", 15),
                ("ecommerce", "2026-11-05", 4),
                ("digital_skills", "2026-11-17", 20),
            ),
            strict=True,
        ):
            await record_support(activity, team["team_id"], category, day, residents)

        async def settled() -> bool:
            commune = await coverage(aggregator, LEGACY_COMMUNE)
            village = (
                commune["coverage"]["village"]["covered"],
                commune["coverage"]["village"]["total"],
            )
            return village == (3, len(villages)) and commune["support"]["events"] == 6

        await wait_until(settled, timeout=60, interval=0.1, message="scenario in the figures")
    return Scenario(villages, set(codes[:3]), codes[len(VILLAGE_NAMES) :])


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system's Chromium driven by Playwright (see `system_chromium`)."""
    executable = system_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def open_page(browser: Browser, url: str, **options: Any) -> Page:
    """A page at `url`, loaded and with its live stream connected; script errors fail the test.

    Playwright's wait_for_function evaluates strings, which the page's Content-Security-Policy
    forbids, so pages ignore that policy unless `bypass_csp=False` (the CSV test keeps it).
    """
    page = await browser.new_page(**{"bypass_csp": True} | options)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(url)
    await page.wait_for_selector("body[data-loaded]")
    await page.wait_for_selector("#live[data-state=live]")
    return page


async def cell(page: Page, key: str) -> str:
    """The text of a figure cell (`head:<figure>`, `row:<code>:<column>`, `cat:<category>:...`)."""
    text = await page.text_content(f'[data-cell="{key}"]')
    assert text is not None, f"no cell {key}"
    return text


async def covered(page: Page, key: str) -> str:
    """The covered/total part of a coverage cell, e.g. "3/9"."""
    text = await page.text_content(f'[data-cell="{key}"] .ratio')
    assert text is not None, f"no coverage cell {key}"
    return text


def ratio(figures: dict[str, int]) -> str:
    return f"{figures['covered']}/{figures['total']}"


async def assert_row_matches(page: Page, row: dict[str, Any]) -> None:
    """A table row shows the API's name, teams, members and covered/total per level."""
    code = row["code"]
    assert await page.text_content(f'tr[data-code="{code}"] th a') == row["name"]
    assert await cell(page, f"row:{code}:teams") == str(row["teams"])
    assert await cell(page, f"row:{code}:members") == str(row["members"])
    assert row["coverage"], row
    for level, figures in row["coverage"].items():
        assert await covered(page, f"row:{code}:{level}") == ratio(figures)


async def click_through(page: Page, name: str, code: str) -> None:
    """Click a unit's link and wait until its view (URL and table) is shown."""
    await page.get_by_role("link", name=name, exact=True).click()
    await page.wait_for_function(
        """code => new URLSearchParams(location.search).get("unit") === code
            && document.querySelector("#export").href.includes("parent=" + code)""",
        arg=code,
    )


async def wait_for_cell(page: Page, key: str, text: str) -> None:
    """Until the cell reads `text` and is highlighted as changed (checked every frame)."""
    await page.wait_for_function(
        """([key, text]) => {
            const node = document.querySelector(`[data-cell="${key}"]`);
            return node !== null && node.textContent === text && node.classList.contains("changed");
        }""",
        arg=[key, text],
        polling="raf",
        timeout=10_000,
    )


async def test_dashboard_drills_down_and_follows_live_changes(
    stack: Stack, browser: Browser
) -> None:
    scenario = await load_scenario(stack)
    ARTIFACTS.mkdir(exist_ok=True)
    url = f"{stack['aggregator'].url}/?edition=legacy"
    page = await open_page(browser, url, viewport={"width": 1280, "height": 900})
    async with stack.client("registry") as registry, stack.client("aggregator") as aggregator:
        # National view: Yên Bái's row and the headline are the API's figures, in Vietnamese.
        national = await coverage(aggregator)
        yen_bai = next(row for row in national["items"] if row["code"] == LEGACY_PROVINCE)
        assert (yen_bai["name"], yen_bai["teams"]) == ("Tỉnh Yên Bái", 3)
        await assert_row_matches(page, yen_bai)
        assert await covered(page, "row:15:village") == f"3/{len(scenario.villages)}"
        assert await cell(page, "head:teams") == "3"
        assert await page.text_content("h2") == "Toàn quốc"
        assert await page.get_attribute("html", "lang") == "vi"
        await page.screenshot(path=ARTIFACTS / "dashboard-national.png", full_page=True)
        await assert_accessible(page, "national")

        # Drill down by clicking: province, district, commune; the breadcrumb follows.
        await click_through(page, "Tỉnh Yên Bái", LEGACY_PROVINCE)
        van_yen = await coverage(aggregator, LEGACY_DISTRICT)
        await assert_row_matches(page, van_yen)
        assert await covered(page, "head:district") == "0/9"
        await click_through(page, "Huyện Văn Yên", LEGACY_DISTRICT)
        assert await covered(page, "head:commune") == "0/25"
        await click_through(page, "Xã Lang Thíp", LEGACY_COMMUNE)
        crumbs = await page.locator("#crumbs li").all_text_contents()
        assert crumbs == ["Toàn quốc", "Tỉnh Yên Bái", "Huyện Văn Yên", "Xã Lang Thíp"]
        assert await page.text_content("h2") == "Xã Lang Thíp"
        commune = await coverage(aggregator, LEGACY_COMMUNE)
        assert await covered(page, "head:village") == f"3/{len(scenario.villages)}"
        assert await cell(page, "head:members") == str(commune["members"]) == "16"
        assert await cell(page, "cat:vneid:residents") == "27"
        assert await page.locator("#chart svg .month").count() == 4  # August to November

        # Every village is a row, its name shown as text, markup included, never run.
        for code, name in scenario.villages.items():
            assert await page.text_content(f'tr[data-code="{code}"] .unit-name') == name
            has_team = "✓ Có" if code in scenario.with_team else "Chưa"
            assert await cell(page, f"row:{code}:has_team") == has_team
        assert await page.evaluate("window.pwned") is None
        assert await page.locator("main img, main script").count() == 0

        # Live: each team registered through the registry shows up without a reload.
        await page.evaluate("window.sameDocument = true")
        delays = []
        members = commune["members"]
        for size, village in enumerate(scenario.without_team, start=2):
            started = time.monotonic()
            await register_team(registry, village, size)
            members += size
            await wait_for_cell(page, "head:members", str(members))
            delays.append(time.monotonic() - started)
            assert await cell(page, f"row:{village}:has_team") == "✓ Có"
        assert await page.evaluate("window.sameDocument") is True
        now_covered = 3 + len(scenario.without_team)
        assert await covered(page, "head:village") == f"{now_covered}/{len(scenario.villages)}"
        median = statistics.median(delays)
        (ARTIFACTS / "dashboard-live.json").write_text(
            json.dumps({"delays_s": [round(d, 3) for d in delays], "median_s": round(median, 3)})
        )
        print(f"live changes shown after {[round(d, 3) for d in delays]} s, median {median:.3f} s")
        assert median < 1.0, f"live changes took {delays} s"
        await page.screenshot(path=ARTIFACTS / "dashboard-commune.png", full_page=True)
        await assert_accessible(page, "commune, after live changes")

        # The URL of a view is enough to open it again (a bookmark, a shared link), on a phone.
        again = await open_page(browser, page.url, viewport={"width": 390, "height": 844})
        assert await again.text_content("h2") == "Xã Lang Thíp"
        assert await again.locator("#crumbs li").all_text_contents() == crumbs
        await again.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)

        # English on request; the keyboard alone walks back up through the breadcrumb.
        await page.click("#lang")
        await page.wait_for_function("document.documentElement.lang === 'en'")
        assert "lang=en" in page.url
        assert await page.text_content("#crumbs li:first-child") == "Nationwide"
        await assert_accessible(page, "commune, in English")
        await page.locator("#crumbs a", has_text="Huyện Văn Yên").focus()
        await page.keyboard.press("Enter")
        await page.wait_for_function("document.querySelector('h2').textContent === 'Huyện Văn Yên'")
        assert "unit=136" in page.url

        # Sorting: one press on a column's button puts the largest first.
        await page.get_by_role("button", name="Members").click()
        await page.wait_for_function("location.search.includes('sort=-members')")
        first_row = await page.get_attribute("#table-body tr:first-child", "data-code")
        assert first_row == LEGACY_COMMUNE
        # The other edition is one press away (nothing is loaded in it here); Back returns.
        await page.click('button.edition[data-edition="2025"]')
        await page.wait_for_function("document.querySelector('h2').textContent === 'Nationwide'")
        assert "edition=2025" in page.url
        assert "unit=" not in page.url
        assert await page.is_visible("#empty")
        assert await page.get_attribute('button[data-edition="2025"]', "aria-pressed") == "true"
        await page.go_back()
        await page.wait_for_function("document.querySelector('h2').textContent === 'Huyện Văn Yên'")
        assert await page.locator("#table-body tr").count() == 25

        for each in (page, again):
            assert not each.errors, each.errors  # type: ignore[attr-defined]


def csv_figures(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row in the API's JSON terms."""
    levels = {
        level: {"covered": int(row[f"{level}_covered"]), "total": int(row[f"{level}_total"])}
        for level in LEVELS
        if f"{level}_covered" in row
    }
    categories = {
        name.removesuffix("_events"): {
            "events": int(value),
            "residents": int(row[name.removesuffix("_events") + "_residents"]),
        }
        for name, value in row.items()
        if name.endswith("_events") and name != "support_events"
    }
    return {
        "outcomes": {kind: int(row[f"outcomes_{kind}"]) for kind in OUTCOME_KINDS},
        "members_trained": int(row["members_trained"]),
        "code": row["code"],
        "name": row["name"],
        "level": row["level"],
        "has_team": row["has_team"] == "yes",
        "teams": int(row["teams"]),
        "members": int(row["members"]),
        "coverage": levels,
        "events": int(row["support_events"]),
        "residents": int(row["support_residents"]),
        "by_category": categories,
    }


def api_figures(unit: dict[str, Any]) -> dict[str, Any]:
    """A served row in the CSV's terms (the CSV splits outcomes by kind, not by category)."""
    return {
        "outcomes": unit["support"]["outcomes"],
        "members_trained": unit["members_trained"],
        "code": unit["code"],
        "name": unit["name"],
        "level": unit["level"],
        "has_team": unit["has_team"],
        "teams": unit["teams"],
        "members": unit["members"],
        "coverage": unit["coverage"],
        "events": unit["support"]["events"],
        "residents": unit["support"]["residents"],
        "by_category": {
            category: {"events": split["events"], "residents": split["residents"]}
            for category, split in unit["support"]["by_category"].items()
        },
    }


async def test_csv_export_equals_the_api_figures(stack: Stack, browser: Browser) -> None:
    scenario = await load_scenario(stack)
    base = stack["aggregator"].url
    async with stack.client("aggregator") as aggregator:
        for unit in ("", LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE):
            page = await open_page(browser, f"{base}/?edition=legacy&unit={unit}", bypass_csp=False)
            export = await page.get_attribute("#export", "href")
            assert export is not None
            response = await aggregator.get(export)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/csv")
            exported = [csv_figures(row) for row in csv.DictReader(io.StringIO(response.text))]

            path = f"/v1/coverage/{unit}/children" if unit else "/v1/coverage"
            served = (await ok(await aggregator.get(path, params={"edition": "legacy"})))["items"]
            assert exported == [api_figures(row) for row in served]
            # The page's table is the same rows with the same figures.
            shown = await page.locator("#table-body tr").evaluate_all(
                "rows => rows.map(r => r.dataset.code)"
            )
            assert sorted(shown) == [row["code"] for row in exported]
            for row in exported:
                assert await cell(page, f"row:{row['code']}:teams") == str(row["teams"])
                assert await cell(page, f"row:{row['code']}:members") == str(row["members"])
            await page.close()
        assert len(exported) == len(scenario.villages)  # the commune's rows are its villages
