"""The services' HTTP API as the end-to-end tests call it: answers checked, trails waited out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

DIRECTORY_TRAIL_SECONDS = 30.0  # how long activity's team directory may trail the registry


async def ok(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of an answer whose status is one of `statuses` (default 200)."""
    assert response.status_code in (statuses or (200,)), (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json() if response.content else {}


async def record_support(
    activity: httpx.AsyncClient, team_id: str, category: str, occurred_on: str, residents: int
) -> None:
    """POST one legacy support event, retried while activity's team directory trails (404)."""
    body = {
        "team_id": team_id,
        "edition": "legacy",
        "category": category,
        "occurred_on": occurred_on,
        "residents_helped": residents,
    }
    deadline = time.monotonic() + DIRECTORY_TRAIL_SECONDS
    while True:
        response = await activity.post("/v1/support-events", json=body)
        if response.status_code != 404 or time.monotonic() > deadline:
            await ok(response, 202)
            return
        await asyncio.sleep(0.1)  # the directory catches up within well under a second
