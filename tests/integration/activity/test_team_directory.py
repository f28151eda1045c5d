"""Activity's team directory from registry.events.v1: lag, version order, and a killed consumer."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select

from cdtt.stack import free_port, service_env, start_service
from services.activity.adapters.tables import team_directory
from services.activity.bootstrap import create_app
from shared.contracts.events import UnitRegistered
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import ACTIVITY_GROUP, REGISTRY_EVENTS, dead_letter_key, stream_key
from shared.runtime.settings import Settings
from tests.integration.activity.harness import (
    directory_consumer,
    directory_version,
    equals,
    publish,
    runtime,
    support_body,
    team_event,
    team_state,
)
from tests.waiting import wait_until

SINGLE = "/v1/support-events"


async def test_a_published_team_becomes_usable_without_a_restart_well_under_a_second(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    lags = []
    for _ in range(15):
        state = team_state()
        body = support_body(state.team_id)

        async def usable(body: dict[str, Any] = body) -> bool:
            response = await client.post(SINGLE, json=body)
            assert response.status_code in (202, 404), response.text
            return response.status_code == 202

        started = time.perf_counter()
        await publish(redis, settings, team_event(state))
        await wait_until(usable, timeout=5, interval=0.002, message="team usable")
        lags.append(time.perf_counter() - started)

    median = statistics.median(lags)
    print(
        f"\ndirectory lag (XADD team.created -> first 202), {len(lags)} teams: "
        f"median {median * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms"
    )
    assert median < 1.0


async def test_the_newest_version_wins_whatever_the_delivery_order(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    created = team_state()
    changed = created.model_copy(update={"version": 2})
    dissolved = created.model_copy(update={"version": 3, "status": "dissolved"})

    # The change arrives before the creation it follows.
    await publish(redis, settings, team_event(changed), team_event(created))
    await wait_until(lambda: equals(directory_version(app, created.team_id), 2))
    assert (await client.post(SINGLE, json=support_body(created.team_id))).status_code == 202

    await publish(redis, settings, team_event(dissolved), team_event(changed))  # a late redelivery
    await wait_until(lambda: _pending_is_zero(redis, settings), message="all acked")
    assert await directory_version(app, created.team_id) == 3
    response = await client.post(SINGLE, json=support_body(created.team_id))
    assert response.status_code == 409


async def test_unit_registered_is_ignored_and_acked(
    app: FastAPI, redis: Redis, settings: Settings
) -> None:
    unit = UnitRegistered.new(
        edition="legacy",
        unit_path=("15", "136", "04378", "04378-900"),
        payload=UnitState(
            code="04378-900",
            name="Thôn Khe Lóng",
            level="village",
            kind="thôn",
            parent_code="04378",
        ),
    )
    team = team_state()
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    await redis.xadd(key, {"envelope": unit.to_json()})
    await publish(redis, settings, team_event(team))

    await wait_until(lambda: directory_version(app, team.team_id))
    await wait_until(lambda: _pending_is_zero(redis, settings), message="all acked")
    assert await _directory(app) == {team.team_id: 1}
    assert await redis.xlen(dead_letter_key(REGISTRY_EVENTS, settings.stream_namespace)) == 0


async def test_a_directory_consumer_killed_mid_batch_loses_no_team_event(
    activity_settings: Settings, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    teams = [team_state() for _ in range(30)]
    newest = {t.team_id: t for t in teams}
    for team in teams[::3]:  # a third of them change once
        newest[team.team_id] = team.model_copy(update={"version": 2})
    events = [team_event(t) for t in teams] + [
        team_event(t) for t in newest.values() if t.version == 2
    ]
    await publish(redis, settings, *events)

    # A real `cdtt serve activity` that SIGKILLs itself after its first batch of 10
    # committed and before it was acked: the worst moment for a consumer to die.
    env = service_env(
        settings,
        base=os.environ,
        CDTT_CONSUMER_BATCH_SIZE="10",
        CDTT_FAULTS="consumer.before_ack",
    )
    killed = await asyncio.to_thread(
        start_service, "activity", env, tmp_path, port=free_port(), name="killed"
    )
    returncode = await asyncio.to_thread(killed.wait_exit, 60)
    if returncode is None:
        killed.kill()
    assert returncode == -signal.SIGKILL, killed.log_tail(60)
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    assert int((await redis.xpending(key, ACTIVITY_GROUP))["pending"]) == 10

    # A new process (another consumer name) takes over the dead one's pending entries.
    app = create_app(activity_settings)
    async with app.router.lifespan_context(app):
        expected = {team_id: state.version for team_id, state in newest.items()}
        await wait_until(
            lambda: equals(_directory(app), expected), timeout=20, message="directory complete"
        )
        await wait_until(lambda: _pending_is_zero(redis, settings), timeout=20)
        stats = directory_consumer(app).stats[REGISTRY_EVENTS]
        assert stats.reclaimed >= 10
        assert stats.dead_lettered == 0
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://activity") as client:
            for team in teams:
                response = await client.post(SINGLE, json=support_body(team.team_id))
                assert response.status_code == 202, response.text


async def _directory(app: FastAPI) -> dict[uuid.UUID, int]:
    async with runtime(app).engine.connect() as conn:
        rows = await conn.execute(select(team_directory.c.team_id, team_directory.c.version))
        return {row.team_id: row.version for row in rows}


async def _pending_is_zero(redis: Redis, settings: Settings) -> bool:
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    return int((await redis.xpending(key, ACTIVITY_GROUP))["pending"]) == 0
