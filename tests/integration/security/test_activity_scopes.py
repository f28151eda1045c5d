"""Activity over HTTP with auth on: publishers record support only for their province's teams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from services.activity import use_cases
from services.activity.adapters.repositories import TeamDirectoryRepository, unit_of_work
from services.activity.bootstrap import create_app
from services.activity.entrypoints.subscribers import directory_entries
from shared.contracts.events import TeamCreated
from shared.contracts.events.registry import TeamState
from shared.runtime.settings import Settings
from tests.integration.activity.harness import (
    directory_version,
    outbox_count,
    publish,
    runtime,
    stored_event_ids,
    support_body,
    team_event,
    team_state,
)
from tests.integration.security.conftest import Keys
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def activity(secured: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(secured.model_copy(update={"reclaim_idle_ms": 300}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(activity: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=activity)
    async with httpx.AsyncClient(transport=transport, base_url="http://activity") as http:
        yield http


async def known_teams(
    redis: Redis, settings: Settings, app: FastAPI
) -> tuple[TeamState, TeamState]:
    """A team in Yên Bái (15) and one in Lạng Sơn (20), both in activity's directory."""
    yen_bai = team_state()
    lang_son = team_state(unit_code="06280-001")
    in_lang_son = TeamCreated.new(
        edition="legacy", unit_path=("20", "178", "06280", "06280-001"), payload=lang_son
    )
    await publish(redis, settings, team_event(yen_bai), in_lang_son)
    for team in (yen_bai, lang_son):
        await wait_until(lambda t=team: directory_version(app, t.team_id), message="in directory")  # type: ignore[misc]
    return yen_bai, lang_son


async def test_support_needs_a_publisher_key(
    client: httpx.AsyncClient, activity: FastAPI, keys: Keys, redis: Redis, secured: Settings
) -> None:
    yen_bai, _ = await known_teams(redis, secured, activity)
    body = support_body(yen_bai.team_id)
    missing = await client.post("/v1/support-events", json=body)
    assert missing.status_code == 401
    operator = await client.post("/v1/support-events", json=body, headers=keys.operator.headers)
    assert operator.status_code == 403
    assert operator.json()["error"]["code"] == "role_not_allowed"
    assert await outbox_count(activity) == 0


async def test_a_publisher_records_support_only_in_its_province(
    client: httpx.AsyncClient, activity: FastAPI, keys: Keys, redis: Redis, secured: Settings
) -> None:
    yen_bai, lang_son = await known_teams(redis, secured, activity)
    own = await client.post(
        "/v1/support-events",
        json=support_body(yen_bai.team_id),
        headers=keys.publisher_15.headers,
    )
    assert own.status_code == 202, own.text
    other = await client.post(
        "/v1/support-events",
        json=support_body(lang_son.team_id),
        headers=keys.publisher_15.headers,
    )
    # Another province's team is answered as an id that exists nowhere: nothing about it leaks.
    nowhere = await client.post(
        "/v1/support-events",
        json=support_body(uuid.uuid4()),
        headers=keys.publisher_15.headers,
    )
    assert (other.status_code, nowhere.status_code) == (404, 404)
    assert other.json()["error"]["code"] == "unknown_team"
    assert "20" not in str(other.json()["error"].get("unit_path", ""))
    assert other.json()["error"].keys() == nowhere.json()["error"].keys()
    assert await stored_event_ids(activity) == {uuid.UUID(own.json()["event_id"])}


async def test_a_batch_refuses_the_items_outside_the_province_one_by_one(
    client: httpx.AsyncClient, activity: FastAPI, keys: Keys, redis: Redis, secured: Settings
) -> None:
    yen_bai, lang_son = await known_teams(redis, secured, activity)
    events: list[dict[str, Any]] = [
        support_body(yen_bai.team_id),
        support_body(lang_son.team_id),
        support_body(yen_bai.team_id, category="ecommerce"),
    ]
    response = await client.post(
        "/v1/support-events:batch", json={"events": events}, headers=keys.publisher_20.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted", "rejected"]
    assert {results[0]["error"]["code"], results[2]["error"]["code"]} == {"unknown_team"}
    assert await stored_event_ids(activity) == {uuid.UUID(events[1]["event_id"])}


async def test_support_events_record_the_key_that_sent_them(
    client: httpx.AsyncClient, activity: FastAPI, keys: Keys, redis: Redis, secured: Settings
) -> None:
    yen_bai, _ = await known_teams(redis, secured, activity)
    body = support_body(yen_bai.team_id)
    response = await client.post("/v1/support-events", json=body, headers=keys.publisher_15.headers)
    assert response.status_code == 202

    async def envelope() -> dict[str, Any] | None:
        entries: Any = await redis.xrange(f"{secured.stream_namespace}activity.events.v1")
        import json

        found = [json.loads(fields[b"envelope"]) for _, fields in entries]
        return next((e for e in found if e["event_id"] == body["event_id"]), None)

    sent = await wait_until(envelope, message="support.recorded on the stream")
    assert sent["actor"] == keys.publisher_15.key_id


async def test_a_team_that_joins_the_directory_mid_request_is_not_let_through_unchecked(
    client: httpx.AsyncClient,
    activity: FastAPI,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Item 5 of #18: the scope is checked on the very rows the events are accepted against.

    Lạng Sơn's team reaches the directory (committed by another transaction, as the
    directory consumer would) right after the request's first directory read: at READ
    COMMITTED a second read would see it and record support for it with Yên Bái's key.
    """
    lang_son = team_state(unit_code="06280-001")
    arrival = TeamCreated.new(
        edition="legacy", unit_path=("20", "178", "06280", "06280-001"), payload=lang_son
    )
    original = TeamDirectoryRepository.get_many
    reads = 0

    async def read_then_catch_up(
        repository: TeamDirectoryRepository, team_ids: Any
    ) -> dict[uuid.UUID, Any]:
        nonlocal reads
        found = await original(repository, team_ids)
        reads += 1
        if reads == 1:
            async with unit_of_work(runtime(activity).sessionmaker) as other:
                await use_cases.update_directory(other, directory_entries([arrival]))
        return found

    monkeypatch.setattr(TeamDirectoryRepository, "get_many", read_then_catch_up)
    response = await client.post(
        "/v1/support-events",
        json=support_body(lang_son.team_id),
        headers=keys.publisher_15.headers,
    )
    assert response.status_code == 404, response.text
    assert await stored_event_ids(activity) == set()
    assert await outbox_count(activity) == 0
