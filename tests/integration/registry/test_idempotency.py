"""Idempotency-Key on every registry write: a retry returns the first answer and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.tables import idempotency_keys, teams
from shared.web.idempotency import REPLAYED_HEADER, purge_idempotency_keys
from tests.factories import LEGACY_DISTRICT, member_body, team_body, village_body
from tests.integration.registry.observe import created, error_code, outbox_types


def keyed(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or str(uuid.uuid4())}


async def count_teams(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(teams)) or 0)


async def test_a_retried_team_creation_returns_the_first_answer(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body, headers = team_body(), keyed()
    first = await client.post("/v1/teams", json=body, headers=headers)
    retry = await client.post("/v1/teams", json=body, headers=headers)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content == first.content
    assert REPLAYED_HEADER not in first.headers
    assert retry.headers[REPLAYED_HEADER] == "true"
    assert await count_teams(engine) == 1
    assert (await outbox_types(engine))["team.created"] == 1


async def test_the_key_matches_requests_by_meaning_not_bytes(client: httpx.AsyncClient) -> None:
    body, headers = team_body(), keyed()
    first = await client.post("/v1/teams", json=body, headers=headers)
    reordered = dict(reversed(list(body.items())))
    retry = await client.post("/v1/teams", json=reordered, headers=headers)
    assert retry.content == first.content


async def test_a_key_reused_for_another_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = keyed("reused-key")
    created(await client.post("/v1/teams", json=team_body(), headers=headers))
    other = await client.post("/v1/teams", json=team_body(LEGACY_DISTRICT), headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["idempotency_key"] == "reused-key"
    assert await count_teams(engine) == 1


async def test_a_key_reused_on_another_endpoint_is_422(client: httpx.AsyncClient) -> None:
    headers = keyed()
    created(await client.post("/v1/units", json=village_body(), headers=headers))
    other = await client.post("/v1/teams", json=team_body(), headers=headers)
    assert (other.status_code, error_code(other)) == (422, "idempotency_key_reused")


async def test_a_retried_village_keeps_its_number(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body, headers = village_body(), keyed()
    first = created(await client.post("/v1/units", json=body, headers=headers))
    retry = created(await client.post("/v1/units", json=body, headers=headers))
    fresh = created(await client.post("/v1/units", json=body))
    assert retry == first
    assert fresh["code"] != first["code"]
    assert (await outbox_types(engine))["unit.registered"] == 178 + 2


async def test_retried_member_changes_apply_once(client: httpx.AsyncClient) -> None:
    team = created(await client.post("/v1/teams", json=team_body(members=3)))
    members_path = f"/v1/teams/{team['team_id']}/members"

    body, add_key = member_body(), keyed()
    added = [await client.post(members_path, json=body, headers=add_key) for _ in range(3)]
    assert {r.status_code for r in added} == {201}
    assert len({r.content for r in added}) == 1

    gone = team["members"][1]["member_id"]
    remove_key = keyed()
    removed = [await client.delete(f"{members_path}/{gone}", headers=remove_key) for _ in range(2)]
    assert [r.status_code for r in removed] == [204, 204]
    assert removed[1].headers[REPLAYED_HEADER] == "true"
    unkeyed = await client.delete(f"{members_path}/{gone}")
    assert unkeyed.status_code == 404

    now = (await client.get(f"/v1/teams/{team['team_id']}")).json()
    assert (now["version"], len(now["members"])) == (3, 3)


async def test_a_retried_dissolve_returns_200_again(client: httpx.AsyncClient) -> None:
    team = created(await client.post("/v1/teams", json=team_body()))
    path, headers = f"/v1/teams/{team['team_id']}/dissolve", keyed()
    first = await client.post(path, headers=headers)
    retry = await client.post(path, headers=headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == first.content
    assert (await client.post(path)).status_code == 409


async def test_a_refused_write_is_not_remembered(client: httpx.AsyncClient) -> None:
    """A 409 left nothing behind: once the conflict is gone, the same key succeeds."""
    existing = created(await client.post("/v1/teams", json=team_body()))
    body, headers = team_body(), keyed()
    refused = await client.post("/v1/teams", json=body, headers=headers)
    assert refused.status_code == 409
    await client.post(f"/v1/teams/{existing['team_id']}/dissolve")
    retry = await client.post("/v1/teams", json=body, headers=headers)
    assert retry.status_code == 201
    assert REPLAYED_HEADER not in retry.headers


async def test_concurrent_requests_with_one_key_write_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body, headers = team_body(), keyed()
    responses = await asyncio.gather(
        *(client.post("/v1/teams", json=body, headers=headers) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["team_id"] for r in responses}) == 1
    assert sum(REPLAYED_HEADER in r.headers for r in responses) == 5
    assert await count_teams(engine) == 1
    assert (await outbox_types(engine))["team.created"] == 1


@pytest.mark.parametrize("key", [b"", b"k" * 256, b"has space", "tiếng-việt".encode()])
async def test_malformed_keys_are_422(client: httpx.AsyncClient, key: bytes) -> None:
    headers = [(b"Idempotency-Key", key)]
    response = await client.post("/v1/teams", json=team_body(), headers=headers)
    assert response.status_code == 422, response.text


async def test_expired_keys_are_purged_and_free_again(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    headers = keyed("old-key")
    created(await client.post("/v1/units", json=village_body(), headers=headers))
    async with engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys).values(created_at=func.now() - func.make_interval(0, 0, 0, 2))
        )
    assert await purge_idempotency_keys(engine, idempotency_keys) == 1
    assert await purge_idempotency_keys(engine, idempotency_keys) == 0
    other: dict[str, Any] = team_body()
    assert (await client.post("/v1/teams", json=other, headers=headers)).status_code == 201
