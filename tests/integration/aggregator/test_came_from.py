"""A 2025 unit's "came from" list on real PostgreSQL: the legacy units its unit.registered
names, with their names once the legacy map is registered too."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.queries import Predecessor, read_came_from, snapshot
from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import apply_batch
from shared.contracts.events.registry import CameFrom
from shared.contracts.streams import REGISTRY_EVENTS
from tests.unit.aggregator.fakes import unit_registered


async def test_a_2025_commune_lists_the_legacy_communes_it_came_from(engine: AsyncEngine) -> None:
    came_from = (CameFrom(code="04378"), CameFrom(code="04390", partly=True))
    async with projection_store(engine) as store:
        await apply_batch(
            store,
            REGISTRY_EVENTS,
            [
                unit_registered(("15",), "province", edition="2025"),
                unit_registered(("15", "04381"), "commune", edition="2025", came_from=came_from),
                # Only one of the two legacy communes is registered here.
                unit_registered(("15", "136", "04378"), "commune", name="Xã Lang Thíp"),
            ],
        )
    async with snapshot(engine) as conn:
        listed = await read_came_from(conn, "2025", "04381")
        none = await read_came_from(conn, "2025", "15")
        legacy = await read_came_from(conn, "legacy", "04378")
    assert listed == [
        Predecessor("04378", "Xã Lang Thíp", "commune", partly=False),
        Predecessor("04390", None, None, partly=True),
    ]
    assert none == legacy == []
