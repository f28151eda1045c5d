"""A team registered in the registry becomes usable in activity without a restart: the whole path.

registry POST /v1/teams → registry outbox → relay (LISTEN/NOTIFY) → registry.events.v1 →
activity's directory consumer → activity accepts support events for the team.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.registry.adapters.official_units import official_units
from services.registry.bootstrap import create_app as create_registry
from services.registry.cli import load_units
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings
from tests.factories import LEGACY_DISTRICT, team_body
from tests.integration.activity.harness import support_body
from tests.waiting import wait_until


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The registry app running, with legacy Yên Bái (province 15) loaded."""
    async with engine_scope(settings.database_url_for("registry"), pool_size=2) as engine:
        await load_units(engine, "legacy", official_units("legacy", ["15"]))
    app: FastAPI = create_registry(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield client


async def test_teams_registered_in_the_registry_are_usable_in_activity_within_a_second(
    registry: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    communes = (
        await registry.get("/v1/units", params={"parent": LEGACY_DISTRICT, "edition": "legacy"})
    ).json()
    codes = [unit["code"] for unit in communes["items"]][:10]
    assert len(codes) == 10
    lags = []
    for code in codes:
        started = time.perf_counter()
        created = await registry.post("/v1/teams", json=team_body(unit_code=code))
        assert created.status_code == 201, created.text
        body = support_body(created.json()["team_id"])

        async def usable(body: dict[str, Any] = body) -> bool:
            response = await client.post("/v1/support-events", json=body)
            assert response.status_code in (202, 404), response.text
            return response.status_code == 202

        await wait_until(usable, timeout=5, interval=0.002, message=f"team of {code} usable")
        lags.append(time.perf_counter() - started)
        assert (await client.post("/v1/support-events", json=body)).json()["unit_code"] == code

    median = statistics.median(lags)
    print(
        f"\nregistry POST /v1/teams -> activity 202, {len(lags)} teams: "
        f"median {median * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms "
        f"(each: {', '.join(f'{lag * 1000:.0f}' for lag in lags)})"
    )
    assert median < 1.0
