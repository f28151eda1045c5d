"""`cdtt activity replay`: after Redis lost activity.events.v1, retained events are sent again."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from services.activity.adapters.tables import outbox
from shared.contracts.events import decode_entry
from shared.contracts.streams import ACTIVITY_EVENTS, stream_key
from shared.messaging.replay import replay_and_publish
from shared.runtime.settings import Settings
from tests.integration.activity.harness import registered_team, support_body
from tests.waiting import wait_until


async def test_replay_refills_a_lost_stream_with_the_retained_events(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    bodies = [support_body(team.team_id) for _ in range(3)]
    for body in bodies:
        assert (await client.post("/v1/support-events", json=body)).status_code == 202
    key = stream_key(ACTIVITY_EVENTS, settings.stream_namespace)
    await wait_until(lambda: _length_is(redis, key, 3), message="published")

    await redis.delete(key)  # Redis lost the stream
    marked = await replay_and_publish(
        settings, service="activity", table=outbox, since_hours=None, publish=True
    )

    assert marked == 3
    # Sent by this command or by the running service's relay, whichever claims them first.
    await wait_until(lambda: _length_is(redis, key, 3), message="replayed")
    entries: Any = await redis.xrange(key)
    assert sorted(str(decode_entry(fields).event_id) for _, fields in entries) == sorted(
        b["event_id"] for b in bodies
    )


async def _length_is(redis: Redis, key: str, length: int) -> bool:
    return bool(await redis.xlen(key) == length)
