"""Business dates over HTTP: defaults, the date rules (a 422 code each) and former members."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.contracts.dates import today_in_vietnam
from tests.factories import member_body, team_body
from tests.integration.registry.observe import created, error_code

# Well past today: computed when the module is collected, it must stay in the future even if
# the run crosses midnight in Vietnam.
IN_A_MONTH = (today_in_vietnam() + timedelta(days=30)).isoformat()


async def dated_team(client: httpx.AsyncClient, established_on: str = "2022-03-15") -> Any:
    members = [member_body(role="leader"), member_body(joined_on="2022-04-01"), member_body()]
    return created(
        await client.post(
            "/v1/teams", json=team_body(members=members, established_on=established_on)
        )
    )


async def test_team_and_member_dates_are_kept_and_shown(client: httpx.AsyncClient) -> None:
    team = await dated_team(client)
    assert [m["joined_on"] for m in team["members"]] == ["2022-03-15", "2022-04-01", "2022-03-15"]
    path = f"/v1/teams/{team['team_id']}"
    added = created(await client.post(f"{path}/members", json=member_body(joined_on="2022-06-01")))
    assert added["joined_on"] == "2022-06-01"
    gone = team["members"][1]["member_id"]
    assert (await client.delete(f"{path}/members/{gone}?left_on=2023-01-31")).status_code == 204
    dissolved = (await client.post(f"{path}/dissolve", json={"dissolved_on": "2024-02-29"})).json()
    assert dissolved["dissolved_on"] == "2024-02-29"
    assert [(m["member_id"], m["left_on"]) for m in dissolved["former_members"]] == [
        (gone, "2023-01-31")
    ]
    assert gone not in [m["member_id"] for m in dissolved["members"]]


async def test_dates_default_to_today_in_vietnam(client: httpx.AsyncClient) -> None:
    body = team_body(members=2)
    body.pop("established_on", None)
    team = created(await client.post("/v1/teams", json=body))
    today = today_in_vietnam().isoformat()
    assert team["established_on"] == today
    assert {m["joined_on"] for m in team["members"]} == {today}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"established_on": "2019-12-31"}, "date_before_earliest"),
        ({"established_on": IN_A_MONTH}, "date_in_future"),
        (
            {"established_on": "2022-03-15", "members": [member_body(joined_on="2022-03-14")]},
            "member_outside_team_dates",
        ),
    ],
)
async def test_team_date_rules(client: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    response = await client.post("/v1/teams", json=team_body(members=1) | body)
    assert response.status_code == 422, response.text
    assert error_code(response) == code


async def test_member_and_dissolution_date_rules(client: httpx.AsyncClient) -> None:
    team = await dated_team(client)
    path = f"/v1/teams/{team['team_id']}"
    member = team["members"][1]["member_id"]  # joined 2022-04-01
    refusals = {
        "member_outside_team_dates": await client.post(
            f"{path}/members", json=member_body(joined_on="2022-03-01")
        ),
        "left_before_joined": await client.delete(f"{path}/members/{member}?left_on=2022-03-31"),
        "date_in_future": await client.delete(f"{path}/members/{member}?left_on={IN_A_MONTH}"),
        "dissolved_before_established": await client.post(
            f"{path}/dissolve", json={"dissolved_on": "2022-03-14"}
        ),
        "date_before_earliest": await client.post(
            f"{path}/dissolve", json={"dissolved_on": "2019-06-01"}
        ),
    }
    # Dissolving before a member joined would leave that member outside the team's dates.
    refusals["member_outside_team_dates "] = await client.post(
        f"{path}/dissolve", json={"dissolved_on": "2022-03-20"}
    )
    for code, response in refusals.items():
        assert response.status_code == 422, (code, response.text)
        assert error_code(response) == code.strip()
    assert (await client.get(path)).json()["version"] == 1
