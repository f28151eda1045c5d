"""A legacy province end to end: units, villages, teams, members and support over HTTP into
the registry and activity, the figures read back from the aggregator at every level.

Yên Bái (15) is loaded from the official list; villages are registered under two communes
of Văn Yên (136); teams go on villages, a commune and the district; support is recorded.
Every has_team, teams, members, covered/total and support figure is checked at province,
district, commune and village level (and nationally), then again after a team is
dissolved and members are removed, and finally `cdtt check` must find no difference.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.api import ok, record_support
from tests.e2e.stack import Stack
from tests.factories import make_members
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROVINCE, DISTRICT = "15", "136"


@dataclass
class Expected:
    """What one unit's figures must read (support kept as (events, residents) per split)."""

    has_team: bool | None
    teams: int
    members: int
    coverage: dict[str, tuple[int, int]]
    events: int = 0
    residents: int = 0
    by_category: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_month: dict[str, tuple[int, int]] = field(default_factory=dict)

    def matches(self, body: dict[str, Any]) -> list[str]:
        """The differences between this and a served body, as readable lines."""
        served = {
            "has_team": body["has_team"],
            "teams": body["teams"],
            "members": body["members"],
            "coverage": {k: (v["covered"], v["total"]) for k, v in body["coverage"].items()},
            "events": body["support"]["events"],
            "residents": body["support"]["residents"],
            "by_category": {
                k: (v["events"], v["residents"])
                for k, v in body["support"]["by_category"].items()
                if v["events"]
            },
            "by_month": {
                k: (v["events"], v["residents"]) for k, v in body["support"]["by_month"].items()
            },
        }
        wanted = {
            "has_team": self.has_team,
            "teams": self.teams,
            "members": self.members,
            "coverage": self.coverage,
            "events": self.events,
            "residents": self.residents,
            "by_category": self.by_category,
            "by_month": self.by_month,
        }
        return [
            f"{name}: served {served[name]!r}, expected {wanted[name]!r}"
            for name in wanted
            if served[name] != wanted[name]
        ]


async def units_under(registry: httpx.AsyncClient, parent: str) -> list[dict[str, Any]]:
    body = await ok(await registry.get("/v1/units", params={"parent": parent, "edition": "legacy"}))
    items: list[dict[str, Any]] = body["items"]
    return items


async def wait_for_figures(
    aggregator: httpx.AsyncClient, expected: dict[str, Expected], within: float = 60.0
) -> None:
    """Poll every unit's figures until all read as expected; fail listing what differs."""

    async def differences() -> list[str]:
        found = []
        for code, wanted in expected.items():
            path = "/v1/coverage" if code == "" else f"/v1/coverage/{code}"
            response = await aggregator.get(path, params={"edition": "legacy"})
            if response.status_code != 200:
                found.append(f"{code or 'national'}: {response.status_code} {response.text}")
                continue
            found += [f"{code or 'national'}: {line}" for line in wanted.matches(response.json())]
        return found

    last: list[str] = []

    async def agreed() -> bool:
        nonlocal last
        last = await differences()
        return not last

    try:
        await wait_until(agreed, timeout=within, interval=0.2, message="figures")
    except AssertionError:
        raise AssertionError("figures still differ:\n" + "\n".join(last)) from None


async def test_a_legacy_province_through_http_at_every_level(stack: Stack) -> None:
    loaded = await stack.cdtt("units", "load", "--edition", "legacy", "--province", PROVINCE)
    assert loaded.returncode == 0, loaded.stderr
    async with (
        stack.client("registry") as registry,
        stack.client("activity") as activity,
        stack.client("aggregator") as aggregator,
    ):
        districts = await units_under(registry, PROVINCE)
        communes_of = {d["code"]: await units_under(registry, d["code"]) for d in districts}
        all_communes = sum(len(c) for c in communes_of.values())
        first, second = (c["code"] for c in communes_of[DISTRICT][:2])
        assert len(districts) == 9  # the seed figures
        assert len(communes_of[DISTRICT]) == 25

        villages = {}
        for commune, count in ((first, 3), (second, 2)):
            for n in range(count):
                body = {
                    "parent_code": commune,
                    "name": f"Thôn Khe Dứa {n + 1}",
                    "edition": "legacy",
                }
                villages[(commune, n)] = (
                    await ok(await registry.post("/v1/units", json=body), 201)
                )["code"]
        v1, v2, v3 = villages[(first, 0)], villages[(first, 1)], villages[(second, 0)]

        async def new_team(unit: str, members: int) -> dict[str, Any]:
            body = {"unit_code": unit, "members": make_members(members), "edition": "legacy"}
            return await ok(await registry.post("/v1/teams", json=body), 201)

        team_v1 = await new_team(v1, 5)
        team_v2 = await new_team(v2, 4)
        team_v3 = await new_team(v3, 3)
        team_commune = await new_team(first, 6)
        team_district = await new_team(DISTRICT, 2)

        for team, category, day, residents in (
            (team_v1, "vneid", "2024-05-02", 10),
            (team_v1, "vneid", "2024-05-20", 7),
            (team_v1, "ecommerce", "2024-06-01", 3),
            (team_v2, "public_services", "2024-06-15", 4),
            (team_v3, "cashless_payment", "2024-05-09", 8),
            (team_commune, "digital_skills", "2024-06-30", 20),
            (team_district, "online_safety", "2024-07-01", 50),
        ):
            await record_support(activity, team["team_id"], category, day, residents)

        villages_total = 5
        support_first: dict[str, Any] = {
            "events": 5,
            "residents": 44,
            "by_category": {
                "vneid": (2, 17),
                "ecommerce": (1, 3),
                "public_services": (1, 4),
                "digital_skills": (1, 20),
            },
            "by_month": {"2024-05": (2, 17), "2024-06": (3, 27)},
        }
        support_district: dict[str, Any] = {
            "events": 7,
            "residents": 102,
            "by_category": support_first["by_category"]
            | {"cashless_payment": (1, 8), "online_safety": (1, 50)},
            "by_month": {"2024-05": (3, 25), "2024-06": (3, 27), "2024-07": (1, 50)},
        }
        province_coverage = {
            "district": (1, 9),
            "commune": (1, all_communes),
            "village": (3, villages_total),
        }
        expected = {
            "": Expected(
                None, 5, 20, {"province": (0, 1), **province_coverage}, **support_district
            ),
            PROVINCE: Expected(False, 5, 20, province_coverage, **support_district),
            DISTRICT: Expected(
                True,
                5,
                20,
                {"commune": (1, 25), "village": (3, villages_total)},
                **support_district,
            ),
            first: Expected(True, 3, 15, {"village": (2, 3)}, **support_first),
            second: Expected(
                False,
                1,
                3,
                {"village": (1, 2)},
                1,
                8,
                {"cashless_payment": (1, 8)},
                {"2024-05": (1, 8)},
            ),
            v1: Expected(
                True,
                1,
                5,
                {},
                3,
                20,
                {"vneid": (2, 17), "ecommerce": (1, 3)},
                {"2024-05": (2, 17), "2024-06": (1, 3)},
            ),
            v2: Expected(True, 1, 4, {}, 1, 4, {"public_services": (1, 4)}, {"2024-06": (1, 4)}),
            villages[(first, 2)]: Expected(False, 0, 0, {}),
        }
        await wait_for_figures(aggregator, expected)

        # The district's children and their CSV agree with the figures served one by one.
        children = await ok(
            await aggregator.get(f"/v1/coverage/{DISTRICT}/children", params={"edition": "legacy"})
        )
        assert [c["code"] for c in children["items"]] == sorted(
            c["code"] for c in communes_of[DISTRICT]
        )
        by_code = {c["code"]: c for c in children["items"]}
        assert expected[first].matches(by_code[first]) == []
        exported = await aggregator.get(
            "/v1/coverage.csv", params={"parent": DISTRICT, "edition": "legacy"}
        )
        assert exported.headers["content-type"].startswith("text/csv")
        rows = {r["code"]: r for r in csv.DictReader(io.StringIO(exported.text))}
        assert (rows[first]["teams"], rows[first]["members"], rows[first]["has_team"]) == (
            "3",
            "15",
            "yes",
        )
        assert (rows[first]["village_covered"], rows[first]["village_total"]) == ("2", "3")
        assert rows[first]["name"] == by_code[first]["name"]

        # A team dissolved and members removed move every ancestor back.
        await ok(await registry.post(f"/v1/teams/{team_v2['team_id']}/dissolve", json={}))
        for member in team_v1["members"][-2:]:
            await ok(
                await registry.delete(
                    f"/v1/teams/{team_v1['team_id']}/members/{member['member_id']}"
                ),
                204,
            )
        province_coverage["village"] = (2, villages_total)
        for code in ("", PROVINCE, DISTRICT):
            expected[code].teams, expected[code].members = 4, 14
            expected[code].coverage["village"] = (2, villages_total)
        expected[first].teams, expected[first].members = 2, 9
        expected[first].coverage["village"] = (1, 3)
        expected[v1].members = 3
        # Support stays: it was done, whatever became of the team since.
        expected[v2].has_team, expected[v2].teams, expected[v2].members = False, 0, 0
        await wait_for_figures(aggregator, expected)

        national = await ok(await aggregator.get("/v1/coverage", params={"edition": "legacy"}))
        assert [p["code"] for p in national["items"]] == [PROVINCE]
        assert national["lag_ms"] is not None
        assert national["as_of"]

    checked = await stack.cdtt("check", "--edition", "legacy", "--wait", "30")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no differences" in checked.stdout
