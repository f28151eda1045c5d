"""LimitsMiddleware and its token buckets on a bare ASGI app, with a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from shared.web.limits import LimitsMiddleware, TokenBuckets

KEY = "cdtt_0123456789ab_" + "a" * 43


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_rate_then_refills_with_time() -> None:
    clock = Clock()
    buckets = TokenBuckets(5, clock)
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5
    assert buckets.take("a") == pytest.approx(0.2)
    assert buckets.take("b") == 0.0  # another name, another bucket
    clock.now += 0.2
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 60
    assert [buckets.take("a") for _ in range(5)] == [0.0] * 5
    assert buckets.take("a") > 0  # never more than one second's worth at once


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body and answers its length (as a route would)."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def client(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://limits")


async def test_a_body_over_the_limit_gets_413_declared_or_streamed() -> None:
    app = LimitsMiddleware(echo_length, max_body_bytes=1024, rate_per_second=None)
    async with client(app) as http:
        assert (await http.post("/v1/x", content=b"a" * 1024)).text == "1024"
        declared = await http.post("/v1/x", content=b"a" * 1025)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "body_too_large"

        sent: list[int] = []

        async def chunks() -> Any:
            for _ in range(100):
                sent.append(1)
                yield b"b" * 512

        streamed = await http.post("/v1/x", content=chunks())
        assert streamed.status_code == 413
        assert len(sent) < 100  # the rest was never read


async def test_requests_over_the_rate_get_429_with_retry_after_per_known_key() -> None:
    verified = {KEY}
    app = LimitsMiddleware(
        echo_length,
        max_body_bytes=1024,
        rate_per_second=3,
        verified=lambda _scope, presented: presented in verified,
    )
    bearer = {"Authorization": f"Bearer {KEY}"}
    async with client(app) as http:
        answers = [(await http.get("/v1/x", headers=bearer)).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        limited = await http.get("/v1/x", headers=bearer)
        assert limited.headers["retry-after"] == "1"
        assert limited.json()["error"]["code"] == "rate_limited"
        # Callers without a verified key count in their address's bucket; probes never count.
        assert (await http.get("/v1/x")).status_code == 200
        probes = [(await http.get("/healthz")).status_code for _ in range(10)]
        assert set(probes) == {200}


async def test_a_known_key_id_with_a_wrong_secret_counts_in_its_address_bucket() -> None:
    """Item 4 of #18: key ids are public, so an id alone never picks the owner's bucket."""
    app = LimitsMiddleware(
        echo_length,
        max_body_bytes=1024,
        rate_per_second=2,
        verified=lambda _scope, presented: presented == KEY,
    )
    forged = {"Authorization": f"Bearer {KEY[:-43]}{'b' * 43}"}
    async with client(app) as http:
        answers = [(await http.get("/v1/x", headers=forged)).status_code for _ in range(3)]
        assert answers == [200, 200, 429]
        owner = [
            (await http.get("/v1/x", headers={"Authorization": f"Bearer {KEY}"})).status_code
            for _ in range(2)
        ]
    assert owner == [200, 200]


async def test_made_up_keys_share_the_bucket_of_their_address() -> None:
    app = LimitsMiddleware(echo_length, max_body_bytes=1024, rate_per_second=2)
    async with client(app) as http:
        answers = [
            (
                await http.get(
                    "/v1/x", headers={"Authorization": f"Bearer cdtt_{n:012x}_{'a' * 43}"}
                )
            ).status_code
            for n in range(3)
        ]
    assert answers == [200, 200, 429]


async def test_without_a_rate_nothing_is_throttled() -> None:
    app = LimitsMiddleware(echo_length, max_body_bytes=1024, rate_per_second=None)
    async with client(app) as http:
        assert {(await http.get("/v1/x")).status_code for _ in range(50)} == {200}


async def test_a_body_that_stops_arriving_gets_408_and_nothing_after_the_body_is_timed() -> None:
    app = LimitsMiddleware(echo_length, max_body_bytes=1024, rate_per_second=None)
    app.body_timeout_seconds = 0.05
    sent: list[dict[str, object]] = []
    first = True

    async def trickle() -> dict[str, object]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def collect(message: dict[str, object]) -> None:
        sent.append(message)

    chunked = [(b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "path": "/v1/x", "headers": chunked, "method": "POST", "client": None}
    await app(scope, trickle, collect)  # type: ignore[arg-type]
    assert sent[0]["status"] == 408
    assert b"request_timeout" in sent[1]["body"]  # type: ignore[operator]

    # Once the body is complete, waiting (a stream listening for a disconnect) is not timed.
    done = asyncio.Event()

    async def listens_after_body(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await receive()  # waits for the client to go, as StreamingResponse does
        done.set()

    messages = iter(
        [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
    )

    async def slow_disconnect() -> dict[str, object]:
        message = next(messages)
        if message["type"] == "http.disconnect":
            await asyncio.sleep(0.2)  # longer than the body timeout: must not be cut short
        return message

    waiting = LimitsMiddleware(listens_after_body, max_body_bytes=1024, rate_per_second=None)
    waiting.body_timeout_seconds = 0.05
    await waiting(scope, slow_disconnect, collect)  # type: ignore[arg-type]
    assert done.is_set()
