"""Placements on the 2025 map over HTTP: the crosswalk loaded with the units, each kind of legacy
team placed (or left waiting) automatically, a publisher placing and moving a team."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.official_units import official_units
from services.registry.adapters.recount import recount_scope
from services.registry.cli import LoadReport, load_units
from shared.contracts.events import TeamPlaced, decode_event
from shared.contracts.events.registry import TEAM_SCHEMA_VERSION
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, team_body
from tests.integration.registry.observe import created, error_code

# Xã Lang Thíp (04378) went whole into 2025 commune 04381 of Lào Cai (15).
LANG_THIP_2025 = "04381"
# Lạng Sơn (20): Xã Bính Xá (06622) was split between 2025 communes 06613 and 06625.
SPLIT_COMMUNE, SPLIT_INTO = "06622", ("06613", "06625")


@pytest.fixture
async def both_maps(engine: AsyncEngine, legacy_yen_bai: LoadReport) -> None:
    """Lào Cai 2025 and Lạng Sơn in both editions, next to legacy Yên Bái."""
    await load_units(engine, "2025", official_units("2025", ["15", "20"]))
    await load_units(engine, "legacy", official_units("legacy", ["20"]))


def placement(team: dict[str, Any], edition: str) -> dict[str, Any] | None:
    return next((p for p in team["placements"] if p["edition"] == edition), None)


async def test_the_crosswalk_answers_both_ways(client: httpx.AsyncClient, both_maps: None) -> None:
    successors = (await client.get(f"/v1/units/{LEGACY_COMMUNE}/successors?edition=legacy")).json()
    assert [(u["edition"], u["code"], u["partly"]) for u in successors["items"]] == [
        ("2025", LANG_THIP_2025, False)
    ]
    came_from = (await client.get(f"/v1/units/{LANG_THIP_2025}/predecessors?edition=2025")).json()
    assert LEGACY_COMMUNE in {u["code"] for u in came_from["items"]}
    assert all(u["edition"] == "legacy" for u in came_from["items"])
    split = (await client.get(f"/v1/units/{SPLIT_COMMUNE}/successors?edition=legacy")).json()
    assert {u["code"] for u in split["items"]} == set(SPLIT_INTO)
    province = (await client.get(f"/v1/units/{LEGACY_PROVINCE}/successors?edition=legacy")).json()
    assert [u["code"] for u in province["items"]] == ["15"]
    missing = await client.get("/v1/units/99999/successors?edition=legacy")
    assert missing.status_code == 404


async def test_a_whole_commune_team_lands_on_its_successor(
    client: httpx.AsyncClient, both_maps: None
) -> None:
    team = created(await client.post("/v1/teams", json=team_body()))
    assert placement(team, "legacy") == {
        "edition": "legacy",
        "unit_code": LEGACY_COMMUNE,
        "unit_level": "commune",
        "unit_path": [LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE],
        "placed": True,
    }
    assert placement(team, "2025") == {
        "edition": "2025",
        "unit_code": LANG_THIP_2025,
        "unit_level": "commune",
        "unit_path": ["15", LANG_THIP_2025],
        "placed": True,
    }
    # A member change keeps the placement (whole state in every event).
    added = await client.post(
        f"/v1/teams/{team['team_id']}/members", json={"full_name": "Lò Thị Mai", "role": "member"}
    )
    assert added.status_code == 201
    again = (await client.get(f"/v1/teams/{team['team_id']}")).json()
    assert again["version"] == 2
    assert placement(again, "2025") == placement(team, "2025")


async def test_district_and_province_teams(client: httpx.AsyncClient, both_maps: None) -> None:
    district = created(await client.post("/v1/teams", json=team_body(LEGACY_DISTRICT)))
    assert placement(district, "2025") == {
        "edition": "2025",
        "unit_code": None,
        "unit_level": None,
        "unit_path": ["15"],
        "placed": True,
    }
    province = created(await client.post("/v1/teams", json=team_body(LEGACY_PROVINCE)))
    assert placement(province, "2025") == {
        "edition": "2025",
        "unit_code": "15",
        "unit_level": "province",
        "unit_path": ["15"],
        "placed": True,
    }


async def test_a_village_team_carries_its_village_onto_the_2025_map(
    client: httpx.AsyncClient, both_maps: None
) -> None:
    village = created(
        await client.post(
            "/v1/units",
            json={"parent_code": LEGACY_COMMUNE, "name": "Thôn Khe Cạn", "edition": "legacy"},
        )
    )
    team = created(await client.post("/v1/teams", json=team_body(village["code"])))
    placed = placement(team, "2025")
    assert placed is not None
    assert placed["unit_level"] == "village"
    assert placed["unit_path"][:2] == ["15", LANG_THIP_2025]
    carried = (await client.get(f"/v1/units/{placed['unit_code']}?edition=2025")).json()
    assert (carried["name"], carried["parent_code"]) == ("Thôn Khe Cạn", LANG_THIP_2025)
    linked = (await client.get(f"/v1/units/{village['code']}/successors?edition=legacy")).json()
    assert [u["code"] for u in linked["items"]] == [placed["unit_code"]]
    # The village's next team reuses the carried village rather than registering another.
    dissolved = await client.post(f"/v1/teams/{team['team_id']}/dissolve")
    assert dissolved.status_code == 200
    second = created(await client.post("/v1/teams", json=team_body(village["code"])))
    assert placement(second, "2025") == placed


async def test_a_split_commune_waits_then_is_placed_and_moved(
    client: httpx.AsyncClient, both_maps: None, engine: AsyncEngine
) -> None:
    team = created(await client.post("/v1/teams", json=team_body(SPLIT_COMMUNE)))
    assert placement(team, "2025") == {
        "edition": "2025",
        "unit_code": None,
        "unit_level": None,
        "unit_path": ["20"],
        "placed": False,
    }
    waiting = (await client.get("/v1/teams?edition=2025&province=20&placement=unplaced")).json()
    assert [t["team_id"] for t in waiting["items"]] == [team["team_id"]]

    put = f"/v1/teams/{team['team_id']}/placement"
    placed = await client.put(put, json={"edition": "2025", "unit_code": SPLIT_INTO[0]})
    assert placed.status_code == 200, placed.text
    assert placement(placed.json(), "2025") == {
        "edition": "2025",
        "unit_code": SPLIT_INTO[0],
        "unit_level": "commune",
        "unit_path": ["20", SPLIT_INTO[0]],
        "placed": True,
    }
    assert placed.json()["version"] == 2
    waiting = (await client.get("/v1/teams?edition=2025&province=20&placement=unplaced")).json()
    assert waiting["items"] == []

    moved = await client.put(put, json={"edition": "2025", "unit_code": SPLIT_INTO[1]})
    assert placement(moved.json(), "2025")["unit_code"] == SPLIT_INTO[1]  # type: ignore[index]
    assert moved.json()["version"] == 3

    elsewhere = await client.put(put, json={"edition": "2025", "unit_code": LANG_THIP_2025})
    assert (elsewhere.status_code, error_code(elsewhere)) == (422, "outside_province")
    province = await client.put(put, json={"edition": "2025", "unit_code": "20"})
    assert (province.status_code, error_code(province)) == (422, "wrong_level")

    from sqlalchemy import select

    from services.registry.adapters.tables import outbox

    async with engine.connect() as conn:
        texts = list(await conn.scalars(select(outbox.c.envelope).order_by(outbox.c.id)))
    placed_events = [e for e in map(decode_event, texts) if isinstance(e, TeamPlaced)]
    assert [e.payload.version for e in placed_events] == [2, 3]
    assert all(
        e.schema_version == TEAM_SCHEMA_VERSION and e.edition == "legacy" for e in placed_events
    )


async def test_a_2025_team_has_no_legacy_placement(
    client: httpx.AsyncClient, both_maps: None
) -> None:
    team = created(await client.post("/v1/teams", json=team_body(LANG_THIP_2025, edition="2025")))
    assert [p["edition"] for p in team["placements"]] == ["2025"]
    put = await client.put(
        f"/v1/teams/{team['team_id']}/placement", json={"edition": "2025", "unit_code": "04381"}
    )
    assert (put.status_code, error_code(put)) == (422, "edition_mismatch")


async def test_the_scope_recount_counts_legacy_teams_where_they_are_placed(
    client: httpx.AsyncClient, both_maps: None, engine: AsyncEngine
) -> None:
    came_from = (await client.get(f"/v1/units/{LANG_THIP_2025}/predecessors?edition=2025")).json()
    merged = sorted(u["code"] for u in came_from["items"] if u["code"].isdigit())
    assert len(merged) >= 2, merged  # two legacy communes, one merged 2025 commune
    for code in merged[:2]:
        created(await client.post("/v1/teams", json=team_body(code)))
    village = created(
        await client.post(
            "/v1/units",
            json={"parent_code": merged[0], "name": "Thôn Khe Cạn", "edition": "legacy"},
        )
    )
    created(await client.post("/v1/teams", json=team_body(village["code"])))
    created(await client.post("/v1/teams", json=team_body(LEGACY_DISTRICT)))

    async with engine.connect() as conn:
        lao_cai = await recount_scope(conn, "2025", "15", 1)
        commune = await recount_scope(conn, "2025", LANG_THIP_2025, 2)
        nation = await recount_scope(conn, "2025", "", 0)
        yen_bai = await recount_scope(conn, "legacy", LEGACY_PROVINCE, 1)
    assert (lao_cai.teams, lao_cai.members) == (4, 12)
    # Two legacy teams on one merged commune cover it once; the district team covers none.
    assert lao_cai.coverage["commune"]["covered"] == 1
    assert lao_cai.coverage["village"] == {"covered": 1, "total": 1}
    assert (commune.teams, commune.coverage["village"]) == (3, {"covered": 1, "total": 1})
    assert (nation.teams, nation.coverage["province"]) == (4, {"covered": 0, "total": 2})
    assert (yen_bai.teams, yen_bai.members) == (4, 12)
