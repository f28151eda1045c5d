"""Reporting rates on real PostgreSQL: active teams, those that recorded support in a month."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.queries import snapshot
from services.aggregator.adapters.reporting import read_reporting
from services.aggregator.adapters.store import projection_store
from services.aggregator.entrypoints.schemas import reporting_row
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, TeamCreated, TeamDissolved
from shared.contracts.streams import REGISTRY_EVENTS
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered

PROVINCE, DISTRICT = ("15",), ("15", "136")
LANG_THIP, AN_BINH = ("15", "136", "04378"), ("15", "136", "04381")
KHE_DUA = ("15", "136", "04378", "04378-001")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url_for("aggregator"), pool_size=2)
    yield engine
    await engine.dispose()


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
