"""`cdtt demo`'s client retries as the services ask: after their Retry-After, else backing off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from cdtt.demo.provincial import ATTEMPTS, MAX_RETRY_AFTER_SECONDS, Api, retry_after_seconds


def answers(*responses: httpx.Response) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """A client whose server gives `responses` in order (the last one for ever after)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


async def call(*responses: httpx.Response) -> tuple[httpx.Response, list[float], int]:
    client, seen = answers(*responses)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with client:
        api = Api(client, {"registry": "http://registry"}, limit=2, sleep=sleep)
        response = await api.call("POST", "registry", "/v1/teams", key="k", json={})
    assert all(request.headers["Idempotency-Key"] == "k" for request in seen)
    return response, waits, len(seen)


async def test_a_429_is_retried_after_the_seconds_it_names() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "2"})
    response, waits, sent = await call(limited, httpx.Response(201))
    assert (response.status_code, waits, sent) == (201, [2.0], 2)


async def test_without_retry_after_the_client_backs_off_on_its_own() -> None:
    response, waits, _ = await call(httpx.Response(503), httpx.Response(503), httpx.Response(200))
    assert response.status_code == 200
    assert waits == [0.1, 0.2]


async def test_retries_are_bounded_and_the_last_answer_is_returned() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "1"})
    response, waits, sent = await call(limited)
    assert (response.status_code, sent) == (429, ATTEMPTS)
    assert waits == [1.0] * (ATTEMPTS - 1)


async def test_other_answers_are_not_retried() -> None:
    response, waits, sent = await call(httpx.Response(409), httpx.Response(201))
    assert (response.status_code, waits, sent) == (409, [], 1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("3600", MAX_RETRY_AFTER_SECONDS), ("soon", None)],
)
def test_retry_after_in_seconds(header: str, expected: float | None) -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": header})) == expected


def test_retry_after_as_a_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    seconds = retry_after_seconds(httpx.Response(503, headers={"Retry-After": later}))
    assert seconds is not None
    assert 15 <= seconds <= 20
    assert retry_after_seconds(httpx.Response(503)) is None
