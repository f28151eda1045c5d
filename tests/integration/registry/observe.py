"""What registry tests look at: outbox rows, stream entries as a plain client sees them, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.tables import outbox
from shared.contracts.streams import REGISTRY_EVENTS, stream_key
from shared.runtime.settings import Settings


async def outbox_types(engine: AsyncEngine) -> dict[str, int]:
    """How many outbox rows of each event type (what the writes queued, sent or not)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)
        )
        return {row[0]: row[1] for row in rows}


async def stream_envelopes(redis: Redis, settings: Settings) -> list[dict[str, Any]]:
    """The registry stream as a plain client reads it: one JSON `envelope` field per entry."""
    entries: Any = await redis.xrange(stream_key(REGISTRY_EVENTS, settings.stream_namespace))
    return [json.loads(fields[b"envelope"]) for _, fields in entries]


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code
