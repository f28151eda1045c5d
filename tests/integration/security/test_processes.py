"""The services as real processes with auth on: revocation within seconds, the live stream's
key (header or cookie), the keys commands, limits through uvicorn, and the refusal to run
keyless in production."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.store import revoke_key
from shared.runtime.settings import Settings
from shared.web.auth import LIVE_COOKIE
from tests.e2e.stack import Stack
from tests.factories import team_body
from tests.integration.security.conftest import Key, make_key
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def stack(secured: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    """Registry and aggregator with auth on (a low rate limit); no units, none are needed."""
    limited = secured.model_copy(update={"rate_limit_per_second": 20.0})
    async with Stack(limited, tmp_path) as running:
        await running.migrate()
        await running.start("registry")
        await running.start("aggregator")
        yield running


async def cli_key(stack: Stack, *args: str) -> Key:
    made = await stack.cdtt("keys", "create", *args)
    assert made.returncode == 0, made.stderr
    text = made.stdout.strip()
    assert text.startswith("cdtt_")
    assert text not in made.stderr  # shown once, on stdout only
    return Key(text.split("_")[1], text)


async def test_keys_made_listed_and_revoked_by_the_command_line(stack: Stack) -> None:
    publisher = await cli_key(
        stack,
        "--role",
        "publisher",
        "--province",
        "15",
        "--edition",
        "legacy",
        "--name",
        "Sở TT&TT Yên Bái",
    )
    refused = await stack.cdtt("keys", "create", "--role", "publisher")
    assert refused.returncode != 0
    assert "bound to a province" in refused.stderr

    listed = await stack.cdtt("keys", "list")
    assert publisher.key_id in listed.stdout
    assert "Sở TT&TT Yên Bái" in listed.stdout
    assert publisher.text.split("_", 2)[2] not in listed.stdout  # never a secret

    revoked = await stack.cdtt("keys", "revoke", publisher.key_id)
    assert revoked.returncode == 0, revoked.stderr
    missing = await stack.cdtt("keys", "revoke", "0123456789ab")
    assert missing.returncode == 1


async def test_a_running_service_refuses_a_revoked_key_within_the_cache_period(
    stack: Stack, secured: Settings, auth_engine: AsyncEngine
) -> None:
    operator = await make_key(auth_engine, "operator")
    publisher = await make_key(auth_engine, "publisher", "15")
    figures = {"edition": "legacy"}
    async with stack.client("aggregator") as aggregator, stack.client("registry") as registry:
        read = await aggregator.get("/v1/coverage", params=figures, headers=operator.headers)
        assert read.status_code == 200
        # Authenticated, then refused for its content (no units are loaded here): not a 401.
        team = await registry.post("/v1/teams", json=team_body(), headers=publisher.headers)
        assert team.status_code == 422, team.text

        for key in (operator, publisher):
            assert await revoke_key(auth_engine, key.key_id) is not None
        revoked_at = time.monotonic()

        async def both_refused() -> bool:
            read = await aggregator.get("/v1/coverage", params=figures, headers=operator.headers)
            write = await registry.post("/v1/teams", json=team_body(), headers=publisher.headers)
            return read.status_code == 401 and write.status_code == 401

        await wait_until(both_refused, timeout=10, interval=0.05, message="revocation honoured")
        elapsed = time.monotonic() - revoked_at
    assert elapsed <= secured.auth_cache_seconds + 1.0, f"revocation took {elapsed:.2f} s"


async def read_sse_start(client: httpx.AsyncClient, **options: object) -> tuple[int, str]:
    """The status and the first bytes of a live stream (the stream is then closed)."""
    async with client.stream(
        "GET", "/v1/live", params={"edition": "legacy"}, **options
    ) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            await response.aread()
            return response.status_code, response.text
        async for chunk in response.aiter_text():
            return 200, chunk
    return response.status_code, ""


async def test_the_live_stream_takes_the_key_from_the_header_or_its_cookie_only(
    stack: Stack, auth_engine: AsyncEngine
) -> None:
    operator = await make_key(auth_engine, "operator")
    publisher = await make_key(auth_engine, "publisher", "15")
    async with stack.client("aggregator") as aggregator:
        assert (await read_sse_start(aggregator))[0] == 401
        status, start = await read_sse_start(aggregator, headers=operator.headers)
        assert (status, start.startswith("retry:")) == (200, True)
        status, start = await read_sse_start(
            aggregator, headers={"Cookie": f"{LIVE_COOKIE}={operator.text}"}
        )
        assert (status, start.startswith("retry:")) == (200, True)
        assert (await read_sse_start(aggregator, headers=publisher.headers))[0] == 403
        # The cookie is for EventSource alone: no other route reads it.
        other = await aggregator.get(
            "/v1/coverage",
            params={"edition": "legacy"},
            headers={"Cookie": f"{LIVE_COOKIE}={operator.text}"},
        )
        assert other.status_code == 401


async def test_open_endpoints_need_no_key(stack: Stack) -> None:
    for service in ("registry", "aggregator"):
        async with stack.client(service) as client:
            for path in (
                "/healthz",
                "/readyz",
                "/metrics",
                "/docs",
                "/openapi.json",
                "/asyncapi.yaml",
            ):
                response = await client.get(path)
                assert response.status_code == 200, (service, path, response.text)
    async with stack.client("aggregator") as aggregator:
        assert (await aggregator.get("/")).status_code == 200  # the page asks for the key
        assert (await aggregator.get("/v1/coverage")).status_code == 401


async def test_oversized_bodies_and_bursts_are_refused_through_uvicorn(
    stack: Stack, auth_engine: AsyncEngine
) -> None:
    admin = await make_key(auth_engine, "admin")
    # An 8 MiB body announced, 1 KiB of it sent: the 413 comes back without the rest.
    reader, writer = await asyncio.open_connection("127.0.0.1", stack["registry"].port)
    head = (
        "POST /v1/teams HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {admin.text}\r\nContent-Length: {8 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + b"{" + b" " * 1023)
    await writer.drain()
    # Until the server closes (it answers "connection: close"): head and body may come
    # in separate reads.
    answer = await asyncio.wait_for(reader.read(-1), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b'"body_too_large"' in answer

    async with stack.client("registry") as registry:
        # A chunked body (no Content-Length) is counted as it arrives.
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"unit_code": "'
            for _ in range(1100):
                yield b"1" * 1024
            yield b'"}'

        chunked = await registry.post(
            "/v1/teams",
            content=chunks(),
            headers=admin.headers | {"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413, chunked.text

        # Rounds of 40 concurrent reads (under the connection cap) until the bucket of 20
        # runs dry: sequential reads on a busy machine could be slower than the refill.
        statuses: list[httpx.Response] = []
        for _ in range(10):
            statuses += await asyncio.gather(
                *(
                    registry.get("/v1/units", params={"level": "province"}, headers=admin.headers)
                    for _ in range(40)
                )
            )
            if any(a.status_code == 429 for a in statuses):
                break
    codes = [a.status_code for a in statuses]
    assert codes.count(200) >= 10, codes
    assert 429 in codes, codes
    limited = next(a for a in statuses if a.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1


async def test_a_service_refuses_to_start_keyless_in_production_and_warns_when_keyless(
    stack: Stack,
) -> None:
    refused = await stack.start(
        "registry",
        name="registry-production",
        env={"CDTT_ENV": "production", "CDTT_AUTH": "off"},
        wait_ready=False,
    )
    assert await asyncio.to_thread(refused.wait_exit, 60) not in (None, 0)
    assert "CDTT_AUTH=off with CDTT_ENV=production" in refused.log_tail(80)

    # Item 9 of #18: keyless on an address other machines reach is refused in any CDTT_ENV.
    for host in ("0.0.0.0", "::"):
        exposed = await stack.start(
            "registry",
            name=f"registry-keyless-{host.strip(':.') or 'v6'}",
            env={"CDTT_ENV": "development", "CDTT_AUTH": "off"},
            host=host,
            wait_ready=False,
        )
        assert await asyncio.to_thread(exposed.wait_exit, 60) not in (None, 0)
        assert f"CDTT_AUTH=off with --host {host}" in exposed.log_tail(80)

    keyless = await stack.start("aggregator", name="aggregator-keyless", env={"CDTT_AUTH": "off"})
    assert "NO AUTHENTICATION" in keyless.log_tail(80)
    async with httpx.AsyncClient(base_url=keyless.url) as client:
        open_read = await client.get("/v1/coverage", params={"edition": "legacy"})
    assert open_read.status_code == 200


async def test_a_public_key_id_with_a_wrong_secret_cannot_spend_its_owners_rate(
    stack: Stack, auth_engine: AsyncEngine
) -> None:
    """Item 4 of #18: the bucket of a key is used only once its secret matched."""
    victim = await make_key(auth_engine, "operator")
    forged = Key(victim.key_id, f"cdtt_{victim.key_id}_{'A' * 43}")
    figures = {"edition": "legacy"}
    async with stack.client("aggregator") as aggregator:
        assert (
            await aggregator.get("/v1/coverage", params=figures, headers=victim.headers)
        ).status_code == 200
        # 150 forged requests (the review's figure), in rounds under the connection cap.
        answers: list[int] = []
        for _ in range(5):
            answers += [
                response.status_code
                for response in await asyncio.gather(
                    *(
                        aggregator.get("/v1/coverage", params=figures, headers=forged.headers)
                        for _ in range(30)
                    )
                )
            ]
        assert set(answers) <= {401, 429}
        victims = await asyncio.gather(
            *(
                aggregator.get("/v1/coverage", params=figures, headers=victim.headers)
                for _ in range(5)
            )
        )
    assert [v.status_code for v in victims] == [200] * 5
