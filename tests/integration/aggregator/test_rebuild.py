"""`cdtt aggregator rebuild` against real PostgreSQL and Redis: same figures, served throughout."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cdtt.ops.check import differences, rebuild_differences
from services.aggregator.adapters.queries import read_national
from services.aggregator.adapters.store import projection_store
from services.aggregator.adapters.tables import figures
from services.aggregator.rebuild import RebuildRefusedError, rebuild
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import TeamCreated
from shared.contracts.streams import ACTIVITY_EVENTS, REGISTRY_EVENTS, StreamLayout
from shared.runtime.settings import Settings
from tests.integration.aggregator.figures import figure_differences, stored_figures
from tests.integration.aggregator.test_consumer import agree, consumer, publish
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered
from tests.unit.aggregator.history import random_history


async def schemas(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT nspname FROM pg_namespace"))
        return {r.nspname for r in rows}


async def test_a_rebuild_gives_exactly_the_live_figures(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    world = random_history(seed=13)
    await publish(redis, settings, [*world.log, *world.log[::4]])
    running = consumer(settings, engine, "live")
    await running.start()
    try:
        await agree(engine, world)
    finally:
        await running.stop()
    live = await stored_figures(engine)

    report = await rebuild(engine, redis, StreamLayout(settings.stream_namespace), batch_size=100)

    rebuilt = await stored_figures(engine)
    assert differences(live, rebuilt) == []
    assert rebuilt.units == live.units
    assert report.changed_keys == 0
    assert sum(report.events.values()) == len(world.log) + len(world.log[::4])
    assert "aggregator_rebuild" not in await schemas(engine)


async def test_figures_are_served_and_kept_live_during_a_rebuild(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    world = random_history(seed=17, operations=2_000)
    half = len(world.log) // 2
    await publish(redis, settings, world.log[:half])
    running = consumer(settings, engine, "live")
    await running.start()
    reads: list[int] = []
    rebuilding = True

    async def read_while_rebuilding() -> None:
        while rebuilding:
            async with engine.connect() as conn:
                reads.append((await read_national(conn, "legacy")).counters.total_province)
            await asyncio.sleep(0.005)

    async def keep_publishing() -> None:
        for start in range(half, len(world.log), 50):
            await publish(redis, settings, world.log[start : start + 50])
            await asyncio.sleep(0.01)

    try:
        reader = asyncio.create_task(read_while_rebuilding())
        publisher = asyncio.create_task(keep_publishing())
        await asyncio.sleep(0.2)
        await rebuild(engine, redis, StreamLayout(settings.stream_namespace), batch_size=50)
        rebuilding = False
        await asyncio.gather(reader, publisher)
        await agree(engine, world)
        # The live consumer went on across the swap without a failed batch.
        assert all(s.failed_batches == 0 for s in running.stats.values())
    finally:
        rebuilding = False
        await running.stop()
    assert len(reads) > 5
    # Provinces are registered first: once counted, never uncounted by the swap.
    first_full = next(i for i, n in enumerate(reads) if n == 3)
    assert all(n == 3 for n in reads[first_full:])


async def test_a_rebuild_corrects_figures_that_went_wrong(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    world = random_history(seed=19)
    await publish(redis, settings, world.log)
    running = consumer(settings, engine, "live")
    await running.start()
    try:
        await agree(engine, world)
    finally:
        await running.stop()
    async with engine.begin() as conn:
        await conn.execute(update(figures).where(figures.c.code == "").values(teams=999_999))
    assert await figure_differences(engine, world) != []

    report = await rebuild(engine, redis, StreamLayout(settings.stream_namespace))

    assert report.changed_keys == 1
    assert await figure_differences(engine, world) == []


async def test_a_rebuild_refuses_when_applied_events_are_no_longer_on_the_streams(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    # Applied live, but the stream has lost it (as after a trim or a Redis restart).
    async with projection_store(engine) as store:
        await apply_batch(store, REGISTRY_EVENTS, [unit_registered(("15",), "province")])
    before = await stored_figures(engine)

    with pytest.raises(RebuildRefusedError, match="1 events in the live figures"):
        await rebuild(engine, redis, StreamLayout(settings.stream_namespace))

    assert differences(before, await stored_figures(engine)) == []
    assert "aggregator_rebuild" not in await schemas(engine)
    forced = await rebuild(
        engine, redis, StreamLayout(settings.stream_namespace), accept_missing=True
    )
    assert forced.changed_keys == 2  # the nation and the province lost their unit


async def test_a_rebuild_leaves_out_what_the_live_consumer_holds_back_and_check_compares(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    """#18 item 10: one rule for events whose unit is not registered, live and rebuilt."""
    world = random_history(seed=23)
    team_id = uuid.uuid4()
    nowhere = ("99", "999", "99999")  # a commune no unit.registered ever names
    orphans = [
        team_event(TeamCreated, team_id, nowhere, "commune", version=1, member_count=4),
        support_recorded(team_id, nowhere, residents=7),
    ]
    await publish(redis, settings, [*world.log, *orphans])
    running = consumer(settings, engine, "live")
    await running.start()
    try:
        await agree(engine, world)  # live: the orphans are held back, never counted
    finally:
        await running.stop()
    layout = StreamLayout(settings.stream_namespace)

    compared = await rebuild(engine, redis, layout, swap=False)
    assert compared.changed == ()
    assert compared.unknown_unit == {REGISTRY_EVENTS: 1, ACTIVITY_EVENTS: 1}
    assert "aggregator_rebuild" not in await schemas(engine)
    assert await rebuild_differences(settings) == []

    # `cdtt check --rebuild` names the units whose live figures a rebuild would change.
    async with engine.begin() as conn:
        await conn.execute(update(figures).where(figures.c.code == "").values(teams=999_999))
    found = await rebuild_differences(settings)
    assert found, "a wrong live figure went unnoticed"
    assert all(line.startswith("rebuild vs live:") for line in found)

    report = await rebuild(engine, redis, layout)
    assert report.swapped
    await agree(engine, world)
