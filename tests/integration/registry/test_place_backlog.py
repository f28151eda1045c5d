"""The placement backlog: legacy teams stored without a 2025 placement (before registry migration
0005, or before the 2025 map was loaded) placed by `cdtt registry place-backlog`, and counted
on the 2025 map by the aggregator from the events it emits."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cdtt.ops.check import run_check
from services.aggregator.adapters.queries import read_unit, snapshot
from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import apply_batch
from services.registry.adapters.official_units import official_units
from services.registry.adapters.tables import outbox, team_placements
from services.registry.cli import LoadReport, load_units, place_backlog
from shared.contracts.events import TeamPlaced, decode_event
from shared.contracts.streams import REGISTRY_EVENTS
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, team_body, village_body
from tests.integration.registry.observe import created

LANG_THIP_2025 = "04381"  # where legacy Xã Lang Thíp (04378) went, in Lào Cai (15)


async def test_teams_stored_without_placements_are_placed_and_counted_in_2025(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    legacy_yen_bai: LoadReport,
    settings: Settings,
) -> None:
    # The old way: legacy teams stored while no placement could be made (no 2025 map yet,
    # as before migration 0005): team and member rows, no team_placements row.
    village = created(await client.post("/v1/units", json=village_body()))
    commune_team = created(await client.post("/v1/teams", json=team_body(LEGACY_COMMUNE)))
    village_team = created(await client.post("/v1/teams", json=team_body(village["code"])))
    district_team = created(await client.post("/v1/teams", json=team_body(LEGACY_DISTRICT)))
    teams = (commune_team, village_team, district_team)
    assert all(t["version"] == 1 for t in teams)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(team_placements)) == 0

    await load_units(engine, "2025", official_units("2025", ["15"]))
    report = await place_backlog(engine)
    assert (report.placed, report.waiting) == (3, 0)
    # Idempotent: a second run finds nothing left to place.
    assert (await place_backlog(engine)).placed == 0

    placed = {t["team_id"]: (await client.get(f"/v1/teams/{t['team_id']}")).json() for t in teams}
    assert {t["version"] for t in placed.values()} == {2}
    on_2025 = {
        team_id: next(p for p in t["placements"] if p["edition"] == "2025")
        for team_id, t in placed.items()
    }
    assert on_2025[commune_team["team_id"]]["unit_path"] == ["15", LANG_THIP_2025]
    assert on_2025[district_team["team_id"]]["unit_path"] == ["15"]
    carried = on_2025[village_team["team_id"]]
    assert (carried["unit_level"], carried["unit_path"][:2]) == ("village", ["15", LANG_THIP_2025])

    # The aggregator learns the placements from the events, as from any team event.
    async with engine.connect() as conn:
        texts = list(await conn.scalars(select(outbox.c.envelope).order_by(outbox.c.id)))
    events = [decode_event(text) for text in texts]
    assert sum(isinstance(e, TeamPlaced) for e in events) == 3
    aggregator = make_engine(settings.database_url_for("aggregator"), pool_size=1)
    try:
        async with projection_store(aggregator) as store:
            await apply_batch(store, REGISTRY_EVENTS, events)
        async with snapshot(aggregator) as conn:
            lao_cai = await read_unit(conn, "2025", "15")
            commune = await read_unit(conn, "2025", LANG_THIP_2025)
    finally:
        await aggregator.dispose()
    assert lao_cai is not None
    assert commune is not None
    assert (lao_cai.counters.teams, lao_cai.counters.members) == (3, 9)
    assert (lao_cai.counters.covered_commune, lao_cai.counters.covered_village) == (1, 1)
    assert lao_cai.counters.unplaced_teams == 0
    assert commune.has_team
    # `cdtt check`: figures equal the recount, and legacy Yên Bái's teams are all in Lào Cai.
    assert (await run_check(settings)).differences == []
