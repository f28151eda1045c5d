"""Item 2 of #18 on a real aggregator process: one key cannot hold more live streams than
CDTT_LIVE_STREAMS_PER_KEY, and a revoked key's open streams end at the next heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.store import revoke_key
from shared.runtime.settings import Settings
from tests.e2e.stack import Stack
from tests.integration.security.conftest import Key, make_key
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(120)]

STREAMS_PER_KEY = 2
HEARTBEAT_SECONDS = 0.5
LIVE = {"edition": "legacy"}


@pytest.fixture
async def stack(secured: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with Stack(secured, tmp_path) as running:
        await running.migrate()
        await running.start(
            "aggregator",
            env={
                "CDTT_LIVE_STREAMS_PER_KEY": str(STREAMS_PER_KEY),
                "CDTT_LIVE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            },
        )
        yield running


@contextlib.asynccontextmanager
async def live_stream(
    client: httpx.AsyncClient, key: Key
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
    """An open /v1/live response and its text (read up to its first bytes when it is 200)."""
    async with client.stream("GET", "/v1/live", params=LIVE, headers=key.headers) as response:
        if response.status_code != 200:
            await response.aread()
            yield response, response.aiter_text()
            return
        chunks = response.aiter_text()
        first = await anext(chunks)
        assert first.startswith("retry:"), first
        yield response, chunks


async def open_status(client: httpx.AsyncClient, key: Key) -> int:
    async with live_stream(client, key) as (response, _):
        return response.status_code


async def read_to_end(chunks: AsyncIterator[str]) -> None:
    async for _ in chunks:
        pass


async def test_one_key_holds_at_most_its_streams_and_a_closed_one_frees_a_place(
    stack: Stack, auth_engine: AsyncEngine
) -> None:
    holder = await make_key(auth_engine, "operator")
    other = await make_key(auth_engine, "operator")
    # One connection per stream: the pool must not make the third wait for a free one.
    limits = httpx.Limits(max_connections=STREAMS_PER_KEY + 4)
    async with (
        httpx.AsyncClient(base_url=stack["aggregator"].url, limits=limits, timeout=10) as client,
        contextlib.AsyncExitStack() as streams,
    ):
        for _ in range(STREAMS_PER_KEY):
            response, _ = await streams.enter_async_context(live_stream(client, holder))
            assert response.status_code == 200

        async with live_stream(client, holder) as (refused, _):
            assert refused.status_code == 429, refused.text
            error = refused.json()["error"]
            assert (error["code"], error["limit"]) == ("too_many_streams", STREAMS_PER_KEY)
        # Another key is not held back by this one's streams.
        assert await open_status(client, other) == 200

        await streams.aclose()  # the holder's streams end; the server notices at its next write

        async def reopened() -> bool:
            return await open_status(client, holder) == 200

        await wait_until(reopened, timeout=10, interval=0.2, message="a place freed")
        # Every stream that ended gave its place back: the full count opens again.
        async with contextlib.AsyncExitStack() as again:
            for _ in range(STREAMS_PER_KEY):
                response, _ = await again.enter_async_context(live_stream(client, holder))
                assert response.status_code == 200
            assert await open_status(client, holder) == 429


async def test_a_revoked_keys_open_streams_end_at_the_next_heartbeat(
    stack: Stack, secured: Settings, auth_engine: AsyncEngine
) -> None:
    operator = await make_key(auth_engine, "operator")
    kept = await make_key(auth_engine, "operator")
    async with (
        httpx.AsyncClient(base_url=stack["aggregator"].url, timeout=10) as client,
        live_stream(client, operator) as (first, first_chunks),
        live_stream(client, operator) as (second, second_chunks),
        live_stream(client, kept) as (survivor, survivor_chunks),
    ):
        assert (first.status_code, second.status_code, survivor.status_code) == (200,) * 3
        assert await revoke_key(auth_engine, operator.key_id) is not None
        # Both streams of the revoked key are ended by the server (the body completes).
        limit = secured.auth_cache_seconds + 2 * HEARTBEAT_SECONDS + 3.0
        async with asyncio.timeout(limit):
            await asyncio.gather(read_to_end(first_chunks), read_to_end(second_chunks))
        # The other key's stream goes on: it still gets its keep-alive comments.
        async with asyncio.timeout(5 * HEARTBEAT_SECONDS):
            assert (await anext(survivor_chunks)).startswith(": keep-alive")
        assert await open_status(client, operator) == 401
