"""Item 3 of #18 on real service processes, under each HTTP parser uvicorn can run: huge or
unfinished request heads are refused and timed out, and the probes answer when idle
sockets fill the connection cap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess, Stack
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]

PARSERS = ("httptools", "h11")
HEADER_TIMEOUT = 2.0
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 10


@pytest.fixture
async def stack(secured: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    """The registry twice, once per parser, with a short header timeout and a cap of 10."""
    async with Stack(secured, tmp_path) as running:
        await running.migrate()
        for parser in PARSERS:
            await running.start(
                "registry",
                name=parser,
                env={
                    "CDTT_HTTP_PARSER": parser,
                    "CDTT_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
                    "CDTT_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
                    "CDTT_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                },
            )
        yield running


@contextlib.asynccontextmanager
async def raw_socket(
    service: ServiceProcess,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(service.host, service.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def answer(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (b"" on a reset)."""
    try:
        async with asyncio.timeout(within):
            return await reader.read(-1)
    except ConnectionError:
        return b""


def head(size: int) -> bytes:
    """A GET /healthz whose head is `size` bytes long (one large header)."""
    start = b"GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Padding: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


async def test_heads_and_idle_sockets_cannot_exhaust_a_service(stack: Stack) -> None:
    """One stack for every check (starting one takes long on a busy machine)."""
    for parser in PARSERS:
        await a_head_over_the_limit_gets_431_and_a_40_mb_one_is_not_read(stack[parser])
        await silent_and_unfinished_heads_are_closed_after_the_timeout(stack[parser])
        await probes_answer_when_idle_sockets_fill_the_connection_cap(stack[parser])
        await a_body_answered_early_is_not_taken_for_a_head(stack[parser])


async def a_head_over_the_limit_gets_431_and_a_40_mb_one_is_not_read(
    service: ServiceProcess,
) -> None:
    async with raw_socket(service) as (reader, writer):
        writer.write(head(MAX_HEADER_BYTES - 100))
        assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
    async with raw_socket(service) as (reader, writer):
        writer.write(head(MAX_HEADER_BYTES + 4096))
        refused = await answer(reader, within=5)
        assert refused.startswith(b"HTTP/1.1 431 "), refused
        assert b'"headers_too_large"' in refused

    # The review's 40 MB header: the server stops reading after the limit and never answers
    # anything but 431 (the answer may be lost to the reset of a connection closed unread).
    sent = 0
    piece = b"a" * 65536
    async with raw_socket(service) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Padding: ")
        with contextlib.suppress(ConnectionError):
            while sent < 40 * 1024 * 1024:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        refused = await answer(reader, within=5)
    assert sent < 40 * 1024 * 1024, "the server read a 40 MB header"
    assert refused == b"" or refused.startswith(b"HTTP/1.1 431 "), refused[:200]
    async with httpx.AsyncClient(base_url=service.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def silent_and_unfinished_heads_are_closed_after_the_timeout(service: ServiceProcess) -> None:
    async with (
        raw_socket(service) as (silent_reader, _),
        raw_socket(service) as (half_reader, half_writer),
        raw_socket(service) as (kept_reader, kept_writer),
    ):
        opened = time.monotonic()
        half_writer.write(b"GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Slow: ")
        # A kept-alive connection whose second head never ends is timed out as well.
        kept_writer.write(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
        first = await kept_reader.readuntil(b"}")
        assert first.startswith(b"HTTP/1.1 200 "), first
        kept_writer.write(b"GET /healthz HTTP/1.1\r\nHost: reg")

        silent, half, kept = await asyncio.gather(
            *(
                answer(r, within=HEADER_TIMEOUT + 8)
                for r in (silent_reader, half_reader, kept_reader)
            )
        )
        elapsed = time.monotonic() - opened
    assert silent == b""  # closed without a word: nothing was asked
    for refused in (half, kept):
        assert refused.startswith(b"HTTP/1.1 408 "), refused
        assert b'"request_timeout"' in refused
    # Not cut short: the 408s come no earlier than the configured timeout (a lower bound
    # only; the upper one is `answer`'s deadline above, so load cannot fail this).
    assert elapsed >= HEADER_TIMEOUT - 0.5


async def probes_answer_when_idle_sockets_fill_the_connection_cap(service: ServiceProcess) -> None:
    async with contextlib.AsyncExitStack() as sockets:
        for _ in range(MAX_CONNECTIONS):
            _, writer = await sockets.enter_async_context(raw_socket(service))
            writer.write(b"GET /v1/units HTTP/1.1\r\n")
            await writer.drain()
        async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            # Everything else is held by the cap until the idle sockets are timed out.
            assert (await client.get("/v1/units")).status_code == 503

            async def served() -> bool:
                return (await client.get("/v1/units")).status_code == 401  # no key: not 503

            await wait_until(served, timeout=HEADER_TIMEOUT + 8, interval=0.2, message="cap freed")


async def a_body_answered_early_is_not_taken_for_a_head(service: ServiceProcess) -> None:
    """A chunked body past the body limit is answered 413 before it ends: the rest of it is
    still body (not a head over the header limit), and the connection serves the next
    request."""
    chunk = b"%x\r\n%s\r\n" % (65536, b"1" * 65536)
    async with raw_socket(service) as (reader, writer):
        writer.write(
            b"POST /v1/teams HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(20):  # 1.25 MiB: past the 1 MiB body limit
            writer.write(chunk)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=5)
        assert status.startswith(b"HTTP/1.1 413 "), status
        await asyncio.wait_for(reader.readuntil(b"}}"), timeout=5)
        writer.write(b"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
        await writer.drain()
        following = await asyncio.wait_for(reader.readline(), timeout=5)
        assert following.startswith(b"HTTP/1.1 200 "), following
