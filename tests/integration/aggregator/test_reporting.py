"""Reporting rates on real PostgreSQL: active teams, those that recorded support in a month."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.queries import snapshot
from services.aggregator.adapters.reporting import read_reporting
from services.aggregator.adapters.store import projection_store
from services.aggregator.entrypoints.schemas import reporting_row
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, TeamCreated, TeamDissolved
from shared.contracts.events.registry import Placement
from shared.contracts.streams import REGISTRY_EVENTS
from shared.contracts.units import Level
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered

PROVINCE, DISTRICT = ("15",), ("15", "136")
LANG_THIP, AN_BINH = ("15", "136", "04378"), ("15", "136", "04381")
KHE_DUA = ("15", "136", "04378", "04378-001")


async def apply(engine: AsyncEngine, events: list[Event]) -> None:
    async with projection_store(engine) as store:
        await apply_batch(store, REGISTRY_EVENTS, events)


async def test_reporting_counts_teams_with_support_in_the_month_and_names_the_silent(
    engine: AsyncEngine,
) -> None:
    reported, silent, dissolved = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply(
        engine,
        [
            unit_registered(PROVINCE, "province"),
            unit_registered(DISTRICT, "district"),
            unit_registered(LANG_THIP, "commune"),
            unit_registered(AN_BINH, "commune"),
            unit_registered(KHE_DUA, "village"),
            team_event(TeamCreated, reported, KHE_DUA, "village", version=1, member_count=3),
            team_event(TeamCreated, silent, LANG_THIP, "commune", version=1, member_count=2),
            team_event(TeamCreated, dissolved, KHE_DUA, "village", version=1, member_count=1),
            team_event(TeamDissolved, dissolved, KHE_DUA, "village", version=2, member_count=1),
            support_recorded(reported, KHE_DUA, day=date(2024, 5, 3)),
            support_recorded(reported, KHE_DUA, day=date(2024, 5, 28)),
            # Support in April does not make the commune's team report in May.
            support_recorded(silent, LANG_THIP, day=date(2024, 4, 30)),
        ],
    )

    async with snapshot(engine) as conn:
        communes = await read_reporting(conn, "legacy", DISTRICT, "2024-05", with_silent=True)
        provinces = await read_reporting(conn, "legacy", (), "2024-05", with_silent=True)
        april = await read_reporting(conn, "legacy", DISTRICT, "2024-04", with_silent=True)

    rows = {row.code: reporting_row(row) for row in communes}
    assert list(rows) == ["04378", "04381"]
    lang_thip = rows["04378"]
    assert (lang_thip.active_teams, lang_thip.reporting_teams, lang_thip.silent_teams) == (2, 1, 1)
    assert lang_thip.reporting_rate == 0.5
    assert [(s.team_id, s.unit_code) for s in lang_thip.silent or []] == [(silent, "04378")]
    # No active team: no rate at all (nothing was expected), not 0.
    an_binh = rows["04381"]
    assert (an_binh.active_teams, an_binh.reporting_rate, an_binh.silent) == (0, None, [])
    (province,) = [reporting_row(row) for row in provinces]
    assert (province.code, province.active_teams, province.reporting_teams) == ("15", 2, 1)
    assert province.silent is None  # silent teams are listed at commune level only
    april_rows = {row.code: reporting_row(row) for row in april}
    assert april_rows["04378"].reporting_rate == 0.5
    assert [s.team_id for s in april_rows["04378"].silent or []] == [reported]


async def test_reporting_on_the_2025_map_counts_legacy_teams_where_they_are_placed(
    engine: AsyncEngine,
) -> None:
    """In 2025, a legacy team counts at its placement (as the figures count it); a team that
    waits for one counts in its province only; both report by their own support."""
    on_commune, on_village, waiting = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    new_commune, new_village = ("15", "04381"), ("15", "04381", "04381-001")

    def placed(path: tuple[str, ...], level: Level | None, *, ok: bool = True) -> Placement:
        return Placement(edition="2025", unit_path=path, unit_level=level, placed=ok)

    await apply(
        engine,
        [
            unit_registered(PROVINCE, "province"),
            unit_registered(DISTRICT, "district"),
            unit_registered(LANG_THIP, "commune"),
            unit_registered(KHE_DUA, "village"),
            unit_registered(AN_BINH, "commune"),
            unit_registered(PROVINCE, "province", edition="2025"),
            unit_registered(new_commune, "commune", edition="2025"),
            unit_registered(new_village, "village", edition="2025"),
            team_event(
                TeamCreated,
                on_commune,
                LANG_THIP,
                "commune",
                version=1,
                member_count=2,
                placements=(placed(new_commune, "commune"),),
            ),
            team_event(
                TeamCreated,
                on_village,
                KHE_DUA,
                "village",
                version=1,
                member_count=3,
                placements=(placed(new_village, "village"),),
            ),
            team_event(
                TeamCreated,
                waiting,
                AN_BINH,
                "commune",
                version=1,
                member_count=1,
                placements=(placed(PROVINCE, None, ok=False),),
            ),
            support_recorded(on_village, KHE_DUA, day=date(2024, 5, 3)),
        ],
    )

    async with snapshot(engine) as conn:
        provinces = await read_reporting(conn, "2025", (), "2024-05", with_silent=True)
        communes = await read_reporting(conn, "2025", PROVINCE, "2024-05", with_silent=True)
        legacy = await read_reporting(conn, "legacy", (), "2024-05", with_silent=True)

    (lao_cai,) = [reporting_row(row) for row in provinces]
    assert (lao_cai.code, lao_cai.active_teams, lao_cai.reporting_teams) == ("15", 3, 1)
    (commune,) = [reporting_row(row) for row in communes]
    assert (commune.code, commune.active_teams, commune.reporting_teams) == ("04381", 2, 1)
    # The silent team is named with the 2025 unit it is placed on.
    assert [(s.team_id, s.unit_code) for s in commune.silent or []] == [(on_commune, "04381")]
    # The legacy map is unchanged: each team once, at its own unit.
    (yen_bai,) = [reporting_row(row) for row in legacy]
    assert (yen_bai.active_teams, yen_bai.reporting_teams) == (3, 1)
