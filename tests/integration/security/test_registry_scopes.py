"""Registry over HTTP with auth on: who may read and write where, and what the events record."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.store import revoke_key
from shared.runtime.settings import Settings
from tests.factories import (
    LEGACY_COMMUNE,
    LEGACY_DISTRICT,
    make_members,
    member_body,
    team_body,
    village_body,
)
from tests.integration.registry.observe import created, error_code, outbox_types, stream_envelopes
from tests.integration.security.conftest import Key, Keys, make_key
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


async def new_team(client: httpx.AsyncClient, key: Key, unit: str = LEGACY_COMMUNE) -> Any:
    response = await client.post("/v1/teams", json=team_body(unit), headers=key.headers)
    return created(response)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer ", "malformed_api_key"),
        ("Bearer not-a-key", "malformed_api_key"),
        ("Basic dXNlcjpwYXNz", "malformed_api_key"),
        (f"Bearer cdtt_0123456789ab_{'A' * 43}", "invalid_api_key"),
        ("Bearer cdtt_0123456789ab_' OR 1=1 --", "malformed_api_key"),
    ],
)
async def test_a_request_without_a_valid_key_is_refused_with_401(
    registry_client: httpx.AsyncClient,
    registry_engine: AsyncEngine,
    authorization: str | None,
    code: str,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = await outbox_types(registry_engine)
    for response in (
        await registry_client.get("/v1/units/15", params={"edition": "legacy"}, headers=headers),
        await registry_client.post("/v1/teams", json=team_body(), headers=headers),
    ):
        assert response.status_code == 401, response.text
        assert error_code(response) == code
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await outbox_types(registry_engine) == before


async def test_the_right_id_with_a_wrong_secret_is_refused(
    registry_client: httpx.AsyncClient, keys: Keys
) -> None:
    forged = f"cdtt_{keys.admin.key_id}_{'x' * 43}"
    response = await registry_client.get(
        "/v1/units/15", params={"edition": "legacy"}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert error_code(response) == "invalid_api_key"


async def test_a_publisher_writes_in_its_province_and_the_events_name_its_key(
    registry_client: httpx.AsyncClient, keys: Keys, redis: Redis, secured: Settings
) -> None:
    team = await new_team(registry_client, keys.publisher_15)
    added = await registry_client.post(
        f"/v1/teams/{team['team_id']}/members",
        json=member_body(),
        headers=keys.publisher_15.headers,
    )
    assert added.status_code == 201, added.text
    village = await registry_client.post(
        "/v1/units", json=village_body(), headers=keys.publisher_15.headers
    )
    assert village.status_code == 201, village.text

    async def three_events() -> list[dict[str, Any]]:
        found = [
            e
            for e in await stream_envelopes(redis, secured)
            if e["type"] in ("team.created", "team.members_changed")
            or (e["type"] == "unit.registered" and e["unit_path"][-1] == village.json()["code"])
        ]
        return found if len(found) == 3 else []

    envelopes = await wait_until(three_events, message="the three events on the stream")
    assert {e["actor"] for e in envelopes} == {keys.publisher_15.key_id}
    secret = keys.publisher_15.text.rsplit("_", 1)[-1]
    assert all(secret not in str(e) for e in envelopes)


async def test_a_publisher_of_another_province_cannot_write_there(
    registry_client: httpx.AsyncClient, registry_engine: AsyncEngine, keys: Keys
) -> None:
    team = await new_team(registry_client, keys.publisher_15)
    before = await outbox_types(registry_engine)
    intruder = keys.publisher_20.headers
    # Units are reference data every key reads: a write at another province's unit says why.
    at_units = [
        await registry_client.post("/v1/teams", json=team_body(LEGACY_DISTRICT), headers=intruder),
        await registry_client.post("/v1/units", json=village_body(), headers=intruder),
    ]
    for response in at_units:
        assert response.status_code == 403, response.text
        assert error_code(response) == "outside_scope"
        message = response.json()["error"]["message"]
        assert "province 20" in message, message
        assert "is in province 15" in message, message
    # Another province's team id is answered as an id that exists nowhere (item "Also" of #18).
    nowhere = await registry_client.post(
        f"/v1/teams/{uuid.uuid4()}/members", json=member_body(), headers=intruder
    )
    at_team = [
        await registry_client.post(
            f"/v1/teams/{team['team_id']}/members", json=member_body(), headers=intruder
        ),
        await registry_client.delete(
            f"/v1/teams/{team['team_id']}/members/{team['members'][1]['member_id']}",
            headers=intruder,
        ),
        await registry_client.post(f"/v1/teams/{team['team_id']}/dissolve", headers=intruder),
    ]
    for response in at_team:
        assert response.status_code == 404, response.text
        assert error_code(response) == "team_not_found"
        assert response.json()["error"].keys() == nowhere.json()["error"].keys()
        assert "04378" not in response.text
        assert "15" not in response.json()["error"]["message"]
    assert await outbox_types(registry_engine) == before
    unchanged = await registry_client.get(
        f"/v1/teams/{team['team_id']}", headers=keys.publisher_15.headers
    )
    assert unchanged.json()["status"] == "active"
    assert unchanged.json()["version"] == 1


async def test_an_operator_key_cannot_write(
    registry_client: httpx.AsyncClient, registry_engine: AsyncEngine, keys: Keys
) -> None:
    before = await outbox_types(registry_engine)
    response = await registry_client.post(
        "/v1/teams", json=team_body(), headers=keys.operator.headers
    )
    assert response.status_code == 403
    assert error_code(response) == "role_not_allowed"
    assert "operator keys may not write" in response.json()["error"]["message"]
    assert await outbox_types(registry_engine) == before


async def test_an_admin_writes_anywhere(registry_client: httpx.AsyncClient, keys: Keys) -> None:
    team = await new_team(registry_client, keys.admin)
    assert team["unit_path"][0] == "15"


async def test_team_details_are_read_only_inside_the_keys_province(
    registry_client: httpx.AsyncClient, keys: Keys
) -> None:
    team = await new_team(registry_client, keys.publisher_15)
    path = f"/v1/teams/{team['team_id']}"
    listing = {"unit": LEGACY_COMMUNE, "edition": "legacy"}
    for key in (keys.publisher_15, keys.operator, keys.operator_15, keys.admin):
        assert (await registry_client.get(path, headers=key.headers)).status_code == 200
        listed = await registry_client.get("/v1/teams", params=listing, headers=key.headers)
        assert listed.status_code == 200
    refused = await registry_client.get(path, headers=keys.publisher_20.headers)
    nowhere = await registry_client.get(f"/v1/teams/{uuid.uuid4()}", headers=keys.admin.headers)
    assert (refused.status_code, error_code(refused)) == (404, "team_not_found")
    assert refused.json()["error"].keys() == nowhere.json()["error"].keys()
    assert team["members"][0]["full_name"] not in refused.text
    assert "04378" not in refused.text
    listed = await registry_client.get(
        "/v1/teams", params=listing, headers=keys.publisher_20.headers
    )
    assert (listed.status_code, error_code(listed)) == (404, "unit_not_found")


async def test_members_phones_are_shown_to_publishers_and_admins_only(
    registry_client: httpx.AsyncClient, keys: Keys
) -> None:
    body = team_body(members=make_members(3, phone="0912 345 678"))
    team = created(
        await registry_client.post("/v1/teams", json=body, headers=keys.publisher_15.headers)
    )
    phones = {m["member_id"]: m["phone"] for m in team["members"]}
    assert all(phones.values())
    path = f"/v1/teams/{team['team_id']}"
    listing = {"unit": LEGACY_COMMUNE, "edition": "legacy"}
    for key, sees in (
        (keys.publisher_15, True),
        (keys.admin, True),
        (keys.operator, False),
        (keys.operator_15, False),
    ):
        read = (await registry_client.get(path, headers=key.headers)).json()
        listed = (
            await registry_client.get("/v1/teams", params=listing, headers=key.headers)
        ).json()
        for shown in (read, listed["items"][0]):
            got = {m["member_id"]: m["phone"] for m in shown["members"]}
            assert got == (phones if sees else dict.fromkeys(phones)), key.key_id
            # Names and roles stay visible to operators.
            assert [m["full_name"] for m in shown["members"]] == [
                m["full_name"] for m in team["members"]
            ]


async def test_a_retry_under_another_key_is_never_answered_with_the_first_keys_response(
    registry_client: httpx.AsyncClient, keys: Keys, auth_engine: AsyncEngine
) -> None:
    body, idempotency = team_body(), {"Idempotency-Key": uuid.uuid4().hex}
    first = await registry_client.post(
        "/v1/teams", json=body, headers=keys.publisher_15.headers | idempotency
    )
    assert first.status_code == 201
    # Another key of the same province shares its keys: the key was used for another request.
    sibling = await make_key(auth_engine, "publisher", "15")
    same_province = await registry_client.post(
        "/v1/teams", json=body, headers=sibling.headers | idempotency
    )
    assert same_province.status_code == 422
    assert error_code(same_province) == "idempotency_key_reused"
    # Another province has keys of its own (#18 item 6): its request is decided afresh.
    other = await registry_client.post(
        "/v1/teams", json=body, headers=keys.publisher_20.headers | idempotency
    )
    assert other.status_code in (403, 404), other.text
    assert "idempotent-replayed" not in other.headers
    for refused in (same_province, other):
        assert first.json()["team_id"] not in refused.text


async def test_a_revoked_key_is_refused_within_the_cache_period(
    registry_client: httpx.AsyncClient, auth_engine: AsyncEngine, keys: Keys, secured: Settings
) -> None:
    unit = {"edition": "legacy"}
    headers = keys.publisher_15.headers
    assert (await registry_client.get("/v1/units/15", params=unit, headers=headers)).is_success
    await revoke_key(auth_engine, keys.publisher_15.key_id)

    async def refused() -> httpx.Response | None:
        response = await registry_client.get("/v1/units/15", params=unit, headers=headers)
        return response if response.status_code == 401 else None

    response = await wait_until(refused, timeout=secured.auth_cache_seconds + 1.0)
    assert error_code(response) == "api_key_revoked"
    created_team = await registry_client.post("/v1/teams", json=team_body(), headers=headers)
    assert created_team.status_code == 401
