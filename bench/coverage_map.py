"""Item 8: the coverage map at national scale: /v1/coverage/map's size and p99, and Chromium's
time from navigation to the drawn national map.

Every 2025 unit is loaded the production way (`cdtt units load --edition 2025`, centres
from the vietnamadminunits data file, events through Redis to the aggregator), and a team
is registered on every third commune through the registry, so covered flags and figures
vary as they would. The map's p99 (gzip, as browsers ask) is read in the same run as the
national table's (/v1/coverage), its side-by-side baseline. The browser time is
performance.now() when map.js has drawn the last dot, median of several page loads.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from playwright.async_api import async_playwright

from bench.harness import (
    ItemResult,
    Process,
    Row,
    Scratch,
    cdtt_serve,
    fmt_ms,
    median,
    percentile,
    service_env,
)
from bench.loadgen import closed_loop
from cdtt import stack

COMMUNES_2025 = 3_321
READS, QUICK_READS = 600, 200
PAGE_LOADS, QUICK_PAGE_LOADS = 7, 3
TEAM_EVERY = 3
REGISTER_CONCURRENCY = 8


def gzip_get(url: str, path: str) -> bytes:
    host = urlsplit(url).netloc
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n".encode()


async def map_body(aggregator: Process) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=aggregator.base_url, timeout=30) as client:
        response = await client.get("/v1/coverage/map", params={"edition": "2025"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def wait_for_points(aggregator: Process, count: int, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body = await map_body(aggregator)
        if len(body["points"]) >= count:
            return body
        if time.monotonic() > deadline:
            raise RuntimeError(f"the map shows {len(body['points'])} of {count} communes")
        await asyncio.sleep(0.5)


async def register_teams(registry: Process, codes: list[str]) -> None:
    members = [
        {"full_name": "Trưởng thôn", "role": "leader"},
        {"full_name": "Bà Lan", "role": "member"},
    ]
    queue = list(codes)
    async with httpx.AsyncClient(base_url=registry.base_url, timeout=30) as client:

        async def worker() -> None:
            while queue:
                code = queue.pop()
                body = {"unit_code": code, "edition": "2025", "members": members}
                response = await client.post("/v1/teams", json=body)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(REGISTER_CONCURRENCY)))


async def drawn_times(url: str, loads: int) -> list[float]:
    """Seconds from navigation start to the drawn national map, one per fresh page load."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    times = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            for _ in range(loads):
                context = await browser.new_context(viewport={"width": 1280, "height": 1000})
                page = await context.new_page()
                await page.goto(f"{url}/?edition=2025")
                await page.wait_for_selector("#map-box[data-drawn-ms]", timeout=60_000)
                drawn = await page.get_attribute("#map-box", "data-drawn-ms")
                times.append(float(drawn or "nan") / 1000)
                await context.close()
        finally:
            await browser.close()
    return times


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    result = ItemResult("8", "Coverage map")
    reads = QUICK_READS if quick else READS
    async with scratch.space("map") as settings, AsyncExitStack() as services:
        registry = await services.enter_async_context(cdtt_serve("registry", settings))
        aggregator = await services.enter_async_context(cdtt_serve("aggregator", settings))
        loaded = await asyncio.create_subprocess_exec(
            *stack.cdtt_command(),
            "units",
            "load",
            "--edition",
            "2025",
            env=service_env(settings),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await loaded.wait() != 0:
            raise RuntimeError("cdtt units load --edition 2025 failed")
        body = await wait_for_points(aggregator, COMMUNES_2025, within=600)
        codes = [row[0] for row in body["points"]][::TEAM_EVERY]
        await register_teams(registry, codes)

        async def covered_all() -> bool:
            shown = await map_body(aggregator)
            return sum(row[5] for row in shown["points"]) == len(codes)

        deadline = time.monotonic() + 300
        while not await covered_all():
            if time.monotonic() > deadline:
                raise RuntimeError("the teams did not all reach the map")
            await asyncio.sleep(0.5)

        raw = orjson.dumps(await map_body(aggregator))
        async with httpx.AsyncClient(base_url=aggregator.base_url, timeout=30) as client:
            response = await client.get(
                "/v1/coverage/map", params={"edition": "2025"}, headers={"Accept-Encoding": "gzip"}
            )
            wire = response.num_bytes_downloaded
            etag = response.headers["etag"]
            again = await client.get(
                "/v1/coverage/map", params={"edition": "2025"}, headers={"If-None-Match": etag}
            )
        base = aggregator.base_url
        map_path, table_path = "/v1/coverage/map?edition=2025", "/v1/coverage?edition=2025"
        p99 = {}
        for label, path in (("map", map_path), ("table", table_path), ("map ", map_path)):
            load = await closed_loop(base, [gzip_get(base, path) for _ in range(reads)], 1, 200)
            p99.setdefault(label.strip(), []).append(percentile(load.latencies, 99))
        map_p99 = median(p99["map"])
        table_p99 = p99["table"][0]
        times = await drawn_times(base, QUICK_PAGE_LOADS if quick else PAGE_LOADS)
    drawn = median(times)
    points = len(body["points"])
    result.rows += [
        Row(
            "8",
            f"/v1/coverage/map size, national 2025 ({points:,} communes, "
            f"1 in {TEAM_EVERY} covered)",
            f"{wire / 1000:,.1f} KB gzip",
            f"{len(raw) / 1000:,.1f} KB plain",
            f"{wire / 1000:,.1f} KB on the wire; 304 when unchanged: {again.status_code == 304}",
            "< 150 KB",
            wire < 150_000 and again.status_code == 304,
        ),
        Row(
            "8",
            f"/v1/coverage/map p99, national 2025, {reads} reads, 1 connection, gzip",
            fmt_ms(map_p99),
            fmt_ms(table_p99) + " (/v1/coverage, 34 provinces, same run)",
            f"{map_p99 / table_p99:,.1f}× the national table's",
            "< 50 ms",
            map_p99 < 0.05,
        ),
        Row(
            "8",
            f"Chromium: navigation → national map drawn ({points:,} dots), median of {len(times)}",
            fmt_ms(drawn),
            "—",
            fmt_ms(drawn),
            "< 1 s",
            drawn < 1.0,
        ),
    ]
    result.details = {
        "points": points,
        "covered": len(codes),
        "wire_bytes": wire,
        "plain_bytes": len(raw),
        "map_p99_s": p99["map"],
        "table_p99_s": table_p99,
        "drawn_s": times,
    }
    return result
