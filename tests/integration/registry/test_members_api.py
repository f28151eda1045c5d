"""Members added and removed, teams dissolved, over HTTP: versions, leaders, last members."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contracts.dates import today_in_vietnam
from tests.factories import member_body, team_body
from tests.integration.registry.observe import created, error_code, outbox_types


@pytest.fixture
async def team(client: httpx.AsyncClient) -> dict[str, Any]:
    """An active team of three (leader, two members) on the legacy commune."""
    return created(await client.post("/v1/teams", json=team_body(members=3)))


async def read(client: httpx.AsyncClient, team_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/teams/{team_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_adding_a_member_returns_it_and_raises_the_version(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/teams/{team['team_id']}/members",
        json=member_body(full_name="Giàng A Páo", role="deputy", phone="+84 987 654 321"),
    )
    added = created(response)
    assert {k: v for k, v in added.items() if k != "member_id"} == {
        "full_name": "Giàng A Páo",
        "role": "deputy",
        "phone": "+84 987 654 321",
        "trained_on": None,
        "joined_on": today_in_vietnam().isoformat(),
        "left_on": None,
        "team_id": team["team_id"],
        "team_version": 2,
    }
    now = await read(client, team["team_id"])
    assert now["version"] == 2
    assert now["members"][-1] == {
        k: added[k]
        for k in ("member_id", "full_name", "role", "phone", "trained_on", "joined_on", "left_on")
    }
    assert len(now["members"]) == 4


async def test_a_second_leader_is_409_naming_the_first(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    leader = team["members"][0]
    response = await client.post(
        f"/v1/teams/{team['team_id']}/members", json=member_body(role="leader")
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "leader_already_present"
    assert response.json()["error"]["leader_member_id"] == leader["member_id"]
    assert (await read(client, team["team_id"]))["version"] == 1


async def test_removing_a_member(client: httpx.AsyncClient, team: dict[str, Any]) -> None:
    gone = team["members"][2]
    response = await client.delete(f"/v1/teams/{team['team_id']}/members/{gone['member_id']}")
    assert response.status_code == 204
    assert response.content == b""
    now = await read(client, team["team_id"])
    assert now["version"] == 2
    assert gone["member_id"] not in {m["member_id"] for m in now["members"]}


async def test_the_leader_may_leave_and_a_new_leader_join(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    leader = team["members"][0]
    removed = await client.delete(f"/v1/teams/{team['team_id']}/members/{leader['member_id']}")
    assert removed.status_code == 204
    assert "leader" not in {m["role"] for m in (await read(client, team["team_id"]))["members"]}
    created(
        await client.post(f"/v1/teams/{team['team_id']}/members", json=member_body(role="leader"))
    )
    now = await read(client, team["team_id"])
    assert (now["version"], [m["role"] for m in now["members"]].count("leader")) == (3, 1)


async def test_the_last_member_cannot_be_removed(client: httpx.AsyncClient) -> None:
    team = created(await client.post("/v1/teams", json=team_body(members=1)))
    only = team["members"][0]
    response = await client.delete(f"/v1/teams/{team['team_id']}/members/{only['member_id']}")
    assert response.status_code == 409
    assert error_code(response) == "last_member"
    assert "dissolve" in response.json()["error"]["message"]
    assert (await read(client, team["team_id"]))["members"] == team["members"]


async def test_unknown_member_or_team_is_404(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    member = await client.delete(f"/v1/teams/{team['team_id']}/members/{uuid.uuid4()}")
    assert (member.status_code, error_code(member)) == (404, "member_not_found")
    other = await client.delete(f"/v1/teams/{uuid.uuid4()}/members/{uuid.uuid4()}")
    assert (other.status_code, error_code(other)) == (404, "team_not_found")
    add = await client.post(f"/v1/teams/{uuid.uuid4()}/members", json=member_body())
    assert (add.status_code, error_code(add)) == (404, "team_not_found")
    gone = await client.post(f"/v1/teams/{uuid.uuid4()}/dissolve")
    assert (gone.status_code, error_code(gone)) == (404, "team_not_found")


@pytest.mark.parametrize(
    "body",
    [
        member_body(full_name=""),
        member_body(full_name="Đ" * 201),
        member_body(role=None),
        member_body(team_id="x"),
        ["not", "an", "object"],
    ],
    ids=["blank", "long", "role-null", "unknown-field", "array"],
)
async def test_invalid_member_bodies_are_422(
    client: httpx.AsyncClient, team: dict[str, Any], body: object
) -> None:
    response = await client.post(f"/v1/teams/{team['team_id']}/members", json=body)
    assert response.status_code == 422, response.text
    assert (await read(client, team["team_id"]))["version"] == 1


async def test_dissolving_ends_the_team_and_frees_the_unit(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    response = await client.post(f"/v1/teams/{team['team_id']}/dissolve")
    assert response.status_code == 200
    assert response.json() == {
        **team,
        "status": "dissolved",
        "dissolved_on": today_in_vietnam().isoformat(),
        "version": 2,
    }

    again = await client.post(f"/v1/teams/{team['team_id']}/dissolve")
    add = await client.post(f"/v1/teams/{team['team_id']}/members", json=member_body())
    remove = await client.delete(
        f"/v1/teams/{team['team_id']}/members/{team['members'][0]['member_id']}"
    )
    for refused in (again, add, remove):
        assert (refused.status_code, error_code(refused)) == (409, "team_dissolved")
    assert (await read(client, team["team_id"]))["version"] == 2

    replacement = created(await client.post("/v1/teams", json=team_body()))
    assert replacement["team_id"] != team["team_id"]


async def test_dissolve_takes_an_optional_body_naming_the_edition(
    client: httpx.AsyncClient, team: dict[str, Any]
) -> None:
    path = f"/v1/teams/{team['team_id']}/dissolve"
    assert (await client.post(path, json={"bogus": 1})).status_code == 422
    assert (await client.post(path, json={"edition": "2025"})).status_code == 404
    mismatch = await client.post(path, params={"edition": "2025"}, json={"edition": "legacy"})
    assert error_code(mismatch) == "edition_mismatch"
    assert (await client.post(path, json={"edition": "legacy"})).status_code == 200


async def test_trained_on_is_set_at_creation_or_later_and_keeps_the_date_rules(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = team_body(members=2)
    body["members"][0]["trained_on"] = "2022-11-30"
    team = created(await client.post("/v1/teams", json=body))
    assert [m["trained_on"] for m in team["members"]] == ["2022-11-30", None]
    other = team["members"][1]["member_id"]
    member_url = f"/v1/teams/{team['team_id']}/members/{other}"

    trained = await client.patch(member_url, json={"trained_on": "2023-03-02"})

    assert trained.status_code == 200, trained.text
    assert trained.json()["version"] == 2
    assert [m["trained_on"] for m in trained.json()["members"]] == ["2022-11-30", "2023-03-02"]
    assert (await read(client, team["team_id"]))["members"][1]["trained_on"] == "2023-03-02"
    # The same date again changes nothing: no new version, no event.
    again = await client.patch(member_url, json={"trained_on": "2023-03-02"})
    assert again.json()["version"] == 2
    assert (await outbox_types(engine)).get("team.members_changed") == 1
    tomorrow = (today_in_vietnam().toordinal() + 1, "2019-12-31")
    future = await client.patch(
        member_url, json={"trained_on": date.fromordinal(tomorrow[0]).isoformat()}
    )
    assert (future.status_code, error_code(future)) == (422, "date_in_future")
    too_early = await client.patch(member_url, json={"trained_on": tomorrow[1]})
    assert (too_early.status_code, error_code(too_early)) == (422, "date_before_earliest")
    created_early = await client.post(
        f"/v1/teams/{team['team_id']}/members", json=member_body(trained_on="2019-06-01")
    )
    assert (created_early.status_code, error_code(created_early)) == (422, "date_before_earliest")
    unknown = await client.patch(
        f"/v1/teams/{team['team_id']}/members/{uuid.uuid4()}", json={"trained_on": None}
    )
    assert unknown.status_code == 404
    cleared = await client.patch(member_url, json={"trained_on": None})
    assert cleared.json()["members"][1]["trained_on"] is None
    assert cleared.json()["version"] == 3
