"""The dashboard when the aggregator dies: it says so, keeps the last figures, reconnects alone.

The page talks to the aggregator through a small TCP relay, so it keeps one address while
the process behind it is killed and a new one starts on another port. A team registered
while the aggregator is down must show up once the page has reconnected, without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_dashboard import (
    ARTIFACTS,
    cell,
    chromium,
    load_scenario,
    open_page,
    register_team,
)
from tests.factories import LEGACY_COMMUNE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


class Relay:
    """Forwards every TCP connection to `upstream`; a dead upstream closes the connection."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                target.write(data)
                await target.drain()
        except OSError:
            pass
        finally:
            target.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 5)


async def test_dashboard_reports_a_lost_connection_and_catches_up_after_reconnecting(
    stack: Stack,
) -> None:
    scenario = await load_scenario(stack)
    relay = Relay(stack["aggregator"].port)
    port = await relay.start()
    try:
        async with chromium() as browser, stack.client("registry") as registry:
            url = f"http://127.0.0.1:{port}/?edition=legacy&unit={LEGACY_COMMUNE}"
            page = await open_page(browser, url, viewport={"width": 1280, "height": 800})
            members = await cell(page, "head:members")
            assert await page.text_content("#live-text") == "Trực tiếp"

            stack["aggregator"].kill()
            await page.wait_for_selector("#live[data-state=lost]", timeout=10_000)
            assert await page.text_content("#live-text") == (
                "Mất kết nối trực tiếp — đang kết nối lại…"
            )
            assert await cell(page, "head:members") == members  # the last figures stay
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "dashboard-lost.png")

            village = scenario.without_team[0]
            await register_team(registry, village, 9)
            restarted = await stack.start("aggregator")
            relay.upstream = restarted.port
            ready = time.monotonic()
            await page.wait_for_selector("#live[data-state=live]", timeout=15_000)
            reconnected = time.monotonic() - ready
            expected = int(members) + 9
            await page.wait_for_function(
                """([village, members]) =>
                    document.querySelector(`[data-cell="row:${village}:has_team"]`)
                        ?.textContent === "✓ Có"
                    && document.querySelector('[data-cell="head:members"]').textContent
                        === members""",
                arg=[village, str(expected)],
                timeout=10_000,
            )
            print(f"live again {reconnected:.3f} s after the new aggregator was ready")
            assert not page.errors  # type: ignore[attr-defined]
    finally:
        await relay.close()
