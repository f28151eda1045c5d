"""Reading the aggregator's projections back, and what a simulated history should have made."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from cdtt.ops.check import differences
from services.aggregator.adapters.audit import Figures
from services.aggregator.adapters.audit import stored_figures as read_stored
from shared.contracts.units import EDITIONS
from tests.unit.aggregator.history import World, recount


async def stored_figures(engine: AsyncEngine) -> Figures:
    async with engine.connect() as conn:
        return await read_stored(conn, EDITIONS)


def expected_figures(world: World) -> Figures:
    counters, by_category, by_month, units = recount(world)
    return Figures(counters, by_category, by_month, units)


async def figure_differences(engine: AsyncEngine, world: World) -> list[str]:
    """`cdtt check`'s comparison, against the history's own recount: [] when they agree."""
    return differences(expected_figures(world), await stored_figures(engine))
