"""Reading the aggregator's projections back, and what a simulated history should have made."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from cdtt.ops.check import differences
from services.aggregator.adapters.audit import Figures
from services.aggregator.adapters.audit import stored_figures as read_stored
from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event
from shared.contracts.streams import REGISTRY_EVENTS
from shared.contracts.units import EDITIONS
from tests.unit.aggregator.history import World, recount


async def apply(engine: AsyncEngine, *events: Event) -> None:
    """Project registry events, as one batch of the registry stream."""
    async with projection_store(engine) as store:
        await apply_batch(store, REGISTRY_EVENTS, list(events))


async def stored_figures(engine: AsyncEngine) -> Figures:
    async with engine.connect() as conn:
        return await read_stored(conn, EDITIONS)


def expected_figures(world: World) -> Figures:
    counters, by_category, by_month, units = recount(world)
    return Figures(counters, by_category, by_month, units)


async def figure_differences(engine: AsyncEngine, world: World) -> list[str]:
    """`cdtt check`'s comparison, against the history's own recount: [] when they agree."""
    return differences(expected_figures(world), await stored_figures(engine))
