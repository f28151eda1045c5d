"""The projections in real PostgreSQL: any order, duplicates, concurrent batches, rollbacks."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Collection, Mapping

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.store import SqlProjectionStore, projection_store
from services.aggregator.adapters.tables import figures, processed_events
from services.aggregator.domain import NATIONAL, FigureKey, SupportDayKey, SupportDelta, SupportKey
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, TeamCreated, TeamDissolved, TeamMembersChanged
from shared.contracts.streams import REGISTRY_EVENTS
from shared.runtime.settings import Settings
from tests.integration.aggregator.figures import figure_differences, stored_figures
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered
from tests.unit.aggregator.history import random_history


def shuffled_batches(log: list[Event], seed: int, max_batch: int) -> list[list[Event]]:
    """The log with a third of it repeated, shuffled, cut into batches of random sizes."""
    rng = random.Random(seed)
    delivered = [*log, *rng.sample(log, len(log) // 3)]
    rng.shuffle(delivered)
    batches = []
    while delivered:
        size = rng.randint(1, max_batch)
        batches.append(delivered[:size])
        delivered = delivered[size:]
    return batches


async def apply(engine: AsyncEngine, events: list[Event]) -> None:
    async with projection_store(engine) as store:
        await apply_batch(store, REGISTRY_EVENTS, events)


async def test_a_shuffled_log_with_duplicates_gives_the_figures_of_the_definitions(
    engine: AsyncEngine,
) -> None:
    world = random_history(seed=7)
    for batch in shuffled_batches(world.log, seed=7, max_batch=300):
        await apply(engine, batch)

    assert await figure_differences(engine, world) == []
    async with engine.connect() as conn:
        processed = await conn.scalar(select(func.count()).select_from(processed_events))
    assert processed == len(world.log)


async def test_concurrent_batches_with_shared_keys_neither_double_count_nor_deadlock(
    engine: AsyncEngine, settings: Settings
) -> None:
    world = random_history(seed=11, provinces=2, operations=1_500)
    batches = shuffled_batches(world.log, seed=11, max_batch=120)
    queue: asyncio.Queue[list[Event]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    async with engine.connect() as conn:
        deadlocks_before = await conn.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )

    async def worker() -> int:
        applied = 0
        while not queue.empty():
            await apply(engine, queue.get_nowait())
            applied += 1
        return applied

    done = await asyncio.gather(*(worker() for _ in range(6)))

    assert sum(done) == len(batches)
    assert min(done) > 0, "every worker should have applied batches"
    assert await figure_differences(engine, world) == []
    async with engine.connect() as conn:
        deadlocks_after = await conn.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    assert deadlocks_after == deadlocks_before


PATH = ("15", "136", "04270", "04270-001")
ANCESTORS = (NATIONAL, "15", "136", "04270")


async def test_dissolution_and_member_removal_move_every_ancestor_back(
    engine: AsyncEngine,
) -> None:
    team, other = uuid.uuid4(), uuid.uuid4()
    other_path = ("15", "136", "04270", "04270-002")
    units: list[Event] = [
        unit_registered(PATH[:1], "province"),
        unit_registered(PATH[:2], "district"),
        unit_registered(PATH[:3], "commune"),
        unit_registered(PATH, "village"),
        unit_registered(other_path, "village"),
    ]
    await apply(
        engine,
        [
            *units,
            team_event(TeamCreated, team, PATH, "village", version=1, member_count=6),
            team_event(TeamCreated, other, other_path, "village", version=1, member_count=2),
            support_recorded(team, PATH, residents=9),
        ],
    )
    before = await stored_figures(engine)
    for code in ANCESTORS:
        row = before.counters[FigureKey("legacy", code)]
        assert (row.teams, row.members, row.covered_village, row.total_village) == (2, 8, 2, 2)

    await apply(
        engine, [team_event(TeamMembersChanged, team, PATH, "village", version=2, member_count=4)]
    )
    await apply(
        engine, [team_event(TeamDissolved, other, other_path, "village", version=2, member_count=2)]
    )

    after = await stored_figures(engine)
    for code in ANCESTORS:
        row = after.counters[FigureKey("legacy", code)]
        assert (row.teams, row.members, row.covered_village, row.total_village) == (1, 4, 1, 2)
        assert (row.support_events, row.support_residents) == (1, 9)
        assert after.by_category[SupportKey("legacy", code, "vneid")] == SupportDelta(1, 9)
    assert after.counters[FigureKey("legacy", "04270-002")].direct_teams == 0
    assert after.counters[FigureKey("legacy", "04270-001")].direct_teams == 1


class FailingStore(SqlProjectionStore):
    """Fails at the last write of a batch, after every other write was made."""

    async def add_support(
        self,
        by_category: Mapping[SupportKey, SupportDelta],
        by_month: Mapping[SupportKey, SupportDelta],
        by_day: Mapping[SupportDayKey, SupportDelta],
    ) -> None:
        await super().add_support(by_category, by_month, by_day)
        raise ConnectionError("database went away before the commit")

    async def announce(self, changed: Collection[FigureKey]) -> None:
        raise AssertionError("not reached")


async def test_a_batch_that_fails_before_its_commit_leaves_nothing_behind(
    engine: AsyncEngine,
) -> None:
    team = uuid.uuid4()
    batch: list[Event] = [
        unit_registered(PATH[:1], "province"),
        team_event(TeamCreated, team, PATH, "village", version=1, member_count=3),
        support_recorded(team, PATH, residents=4),
    ]
    with pytest.raises(ConnectionError):
        async with engine.begin() as conn:
            await apply_batch(FailingStore(conn), REGISTRY_EVENTS, batch)

    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(figures)) == 0
        assert await conn.scalar(select(func.count()).select_from(processed_events)) == 0

    await apply(engine, batch)  # delivered again: applied in full, once
    await apply(engine, batch)
    national = (await stored_figures(engine)).counters[FigureKey("legacy", NATIONAL)]
    assert (national.teams, national.members, national.support_residents) == (1, 3, 4)


async def test_unit_paths_round_trip_whatever_their_characters(engine: AsyncEngine) -> None:
    odd = ("15", 'a"b', "c\\d,x", "{z} Thôn Đá")
    team = uuid.uuid4()
    await apply(
        engine,
        [
            unit_registered(odd, "village"),
            team_event(TeamCreated, team, odd, "village", version=1, member_count=2),
        ],
    )
    await apply(
        engine, [team_event(TeamMembersChanged, team, odd, "village", version=2, member_count=1)]
    )

    async with engine.connect() as conn:
        paths = (await conn.execute(text("SELECT path FROM aggregator.units"))).scalars().all()
        team_paths = (
            (await conn.execute(text("SELECT unit_path FROM aggregator.team_states")))
            .scalars()
            .all()
        )
    assert paths == [list(odd)]
    assert team_paths == [list(odd)]
    stored = await stored_figures(engine)
    assert stored.counters[FigureKey("legacy", "c\\d,x")].members == 1
