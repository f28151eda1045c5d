"""Item 6 of #18: one province cannot take the Idempotency-Key or event_id another will send.

Province 20 (Lạng Sơn) sends first with a predictable key; Yên Bái's (15) own write with
that key must still be done, not refused as a reused key nor answered with 20's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.official_units import official_units
from services.registry.cli import load_units
from shared.runtime.settings import Settings
from tests.factories import LEGACY_COMMUNE, village_body
from tests.integration.activity.harness import support_body
from tests.integration.security.conftest import Keys
from tests.integration.security.test_activity_scopes import known_teams

pytestmark = pytest.mark.integration

LANG_SON_COMMUNE = "06280"


@pytest.fixture
async def both_provinces(
    registry_client: httpx.AsyncClient, registry_engine: AsyncEngine
) -> httpx.AsyncClient:
    """The registry with Lạng Sơn (20) loaded beside Yên Bái (15)."""
    await load_units(registry_engine, "legacy", official_units("legacy", ["20"]))
    return registry_client


async def test_a_key_taken_by_another_province_does_not_block_a_registry_write(
    both_provinces: httpx.AsyncClient, keys: Keys
) -> None:
    predictable = {"Idempotency-Key": f"village-{LEGACY_COMMUNE}-1"}
    squat = await both_provinces.post(
        "/v1/units",
        json=village_body(LANG_SON_COMMUNE),
        headers=keys.publisher_20.headers | predictable,
    )
    assert squat.status_code == 201, squat.text

    own_body = village_body(LEGACY_COMMUNE)
    own = await both_provinces.post(
        "/v1/units", json=own_body, headers=keys.publisher_15.headers | predictable
    )
    assert own.status_code == 201, own.text
    assert own.json()["path"][0] == "15"
    assert "idempotent-replayed" not in own.headers
    # Within each province the key still replays its own first answer.
    again = await both_provinces.post(
        "/v1/units", json=own_body, headers=keys.publisher_15.headers | predictable
    )
    assert (again.status_code, again.json()) == (201, own.json())
    assert again.headers["idempotent-replayed"] == "true"
    squat_again = await both_provinces.post(
        "/v1/units",
        json=village_body(LANG_SON_COMMUNE),
        headers=keys.publisher_20.headers | predictable,
    )
    assert squat_again.status_code == 422  # another request under 20's own key
    assert squat_again.json()["error"]["code"] == "idempotency_key_reused"


@pytest.fixture
async def activity(secured: Settings) -> AsyncIterator[FastAPI]:
    from services.activity.bootstrap import create_app

    app = create_app(secured)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_key_or_event_id_taken_by_another_province_in_activity(
    activity: FastAPI, keys: Keys, redis: Redis, secured: Settings
) -> None:
    yen_bai, lang_son = await known_teams(redis, secured, activity)
    transport = httpx.ASGITransport(app=activity)
    async with httpx.AsyncClient(transport=transport, base_url="http://activity") as client:
        predictable = {"Idempotency-Key": "support-2024-05-20"}
        squat = await client.post(
            "/v1/support-events",
            json=support_body(lang_son.team_id),
            headers=keys.publisher_20.headers | predictable,
        )
        own = await client.post(
            "/v1/support-events",
            json=support_body(yen_bai.team_id),
            headers=keys.publisher_15.headers | predictable,
        )
        assert (squat.status_code, own.status_code) == (202, 202), own.text
        assert own.json()["team_id"] == str(yen_bai.team_id)

        # An event id derived from what the event is about (a UUIDv5) can be taken first:
        # the 409 says why and what to send instead.
        derived = str(uuid.uuid5(uuid.NAMESPACE_URL, "support/04378-001/2024-05-20"))
        taken = await client.post(
            "/v1/support-events",
            json=support_body(lang_son.team_id, event_id=derived),
            headers=keys.publisher_20.headers,
        )
        assert taken.status_code == 202, taken.text
        refused = await client.post(
            "/v1/support-events",
            json=support_body(yen_bai.team_id, event_id=derived),
            headers=keys.publisher_15.headers,
        )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "event_id_conflict"
    assert "random" in error["message"]
    assert "UUIDv4" in error["message"]
    assert "06280" not in refused.text
    assert str(lang_son.team_id) not in refused.text
