"""A legacy team's support on real PostgreSQL: counted in 2025 where the team is placed, and
following it from unplaced to placed to moved, each step its own transaction."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.audit import stored_figures
from services.aggregator.adapters.tables import support_by_day, team_support
from services.aggregator.domain import NATIONAL, FigureKey, SupportDelta, SupportKey
from shared.contracts.events import Event, TeamCreated, TeamPlaced
from shared.contracts.events.registry import Placement
from shared.contracts.units import EDITIONS
from tests.integration.aggregator.figures import apply
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered

UNITS = [
    unit_registered(("15",), "province"),
    unit_registered(("15", "136"), "district"),
    unit_registered(("15", "136", "04390"), "commune"),
    unit_registered(("15",), "province", edition="2025"),
    unit_registered(("15", "04381"), "commune", edition="2025"),
    unit_registered(("15", "04390"), "commune", edition="2025"),
]
PATH = ("15", "136", "04390")
WAITING = Placement(edition="2025", unit_path=("15",), unit_level=None, placed=False)
ON_04381 = Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune")
ON_04390 = Placement(edition="2025", unit_path=("15", "04390"), unit_level="commune")


async def support_2025(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    """(events, residents) per 2025 key with support."""
    async with engine.connect() as conn:
        figures = await stored_figures(conn, EDITIONS)
    return {
        key.code: (row.support_events, row.support_residents)
        for key, row in figures.counters.items()
        if key.edition == "2025" and row.support_events
    }


async def test_support_follows_a_legacy_team_from_unplaced_to_placed_to_moved(
    engine: AsyncEngine,
) -> None:
    team = uuid.uuid4()

    def state(kind: type, version: int, placement: Placement) -> Event:
        return team_event(
            kind, team, PATH, "commune", version=version, member_count=3, placements=(placement,)
        )

    await apply(engine, *UNITS)
    # Support the registry's team event has not reached yet: on the legacy map only.
    await apply(engine, support_recorded(team, PATH, residents=4, day=date(2025, 8, 1)))
    assert await support_2025(engine) == {}

    await apply(engine, state(TeamCreated, 1, WAITING))
    assert await support_2025(engine) == {NATIONAL: (1, 4), "15": (1, 4)}

    await apply(
        engine,
        support_recorded(team, PATH, residents=2, category="ecommerce", day=date(2025, 9, 3)),
        state(TeamPlaced, 2, ON_04381),
    )
    assert await support_2025(engine) == {NATIONAL: (2, 6), "15": (2, 6), "04381": (2, 6)}

    moved = state(TeamPlaced, 3, ON_04390)
    await apply(engine, moved)
    await apply(engine, moved)  # redelivered: nothing more
    assert await support_2025(engine) == {NATIONAL: (2, 6), "15": (2, 6), "04390": (2, 6)}

    async with engine.connect() as conn:
        figures = await stored_figures(conn, EDITIONS)
        days = (
            await conn.execute(
                select(support_by_day.c.code, support_by_day.c.day, support_by_day.c.residents)
                .where(support_by_day.c.edition == "2025", support_by_day.c.residents != 0)
                .order_by(support_by_day.c.code, support_by_day.c.day)
            )
        ).all()
        kept = (
            await conn.execute(
                select(team_support.c.day, team_support.c.category, team_support.c.residents)
                .where(team_support.c.team_id == team)
                .order_by(team_support.c.day)
            )
        ).all()
    assert figures.by_month[SupportKey("2025", "04390", "2025-09")].residents == 2
    assert figures.by_category[SupportKey("2025", "04390", "ecommerce")].events == 1
    left = figures.by_month.get(SupportKey("2025", "04381", "2025-08"), SupportDelta())
    assert left == SupportDelta()
    assert [tuple(r) for r in days] == [
        (NATIONAL, date(2025, 8, 1), 4),
        (NATIONAL, date(2025, 9, 3), 2),
        ("04390", date(2025, 8, 1), 4),
        ("04390", date(2025, 9, 3), 2),
        ("15", date(2025, 8, 1), 4),
        ("15", date(2025, 9, 3), 2),
    ]
    assert [tuple(r) for r in kept] == [
        (date(2025, 8, 1), "vneid", 4),
        (date(2025, 9, 3), "ecommerce", 2),
    ]
    legacy = figures.counters[FigureKey("legacy", "15")]
    assert (legacy.support_events, legacy.support_residents) == (2, 6)
