"""History by business date in real PostgreSQL: figures as of a day, monthly series, late events."""

from __future__ import annotations

import random
import uuid
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.queries import (
    months_between,
    read_figures,
    read_series,
    read_unit,
)
from services.aggregator.domain import (
    HISTORY_COUNTERS,
    NATIONAL,
    FigureDelta,
    FigureKey,
    SupportDelta,
    month_of,
    scope_keys,
)
from shared.contracts.events import TeamCreated, TeamDissolved, TeamMembersChanged
from shared.contracts.events.registry import MemberState, Placement, TeamState
from shared.contracts.units import Edition
from tests.integration.aggregator.figures import apply
from tests.unit.aggregator.fakes import support_recorded, unit_registered
from tests.unit.aggregator.history import World, random_history, recount_as_of

pytestmark = pytest.mark.integration

PROVINCE, DISTRICT, COMMUNE = ("15",), ("15", "136"), ("15", "136", "04378")
VILLAGE = (*COMMUNE, "04378-001")
UNITS = [
    unit_registered(PROVINCE, "province"),
    unit_registered(DISTRICT, "district"),
    unit_registered(COMMUNE, "commune"),
    unit_registered(VILLAGE, "village"),
    unit_registered(("15",), "province", edition="2025"),
    unit_registered(("15", "04381"), "commune", edition="2025"),
]
ON_2025 = Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune")


def member(joined: date, left: date | None = None, trained: date | None = None) -> MemberState:
    return MemberState(
        member_id=uuid.uuid4(),
        full_name="Thành viên",
        role="member",
        joined_on=joined,
        left_on=left,
        trained_on=trained,
    )


def team_state(
    team_id: uuid.UUID,
    version: int,
    established: date,
    members: tuple[MemberState, ...],
    *,
    path: tuple[str, ...] = VILLAGE,
    dissolved: date | None = None,
    former: tuple[MemberState, ...] = (),
    placements: tuple[Placement, ...] = (),
) -> TeamState:
    return TeamState(
        team_id=team_id,
        unit_code=path[-1],
        unit_level="village" if len(path) == 4 else "commune",
        status="dissolved" if dissolved else "active",
        established_on=established,
        dissolved_on=dissolved,
        version=version,
        members=members,
        former_members=former,
        placements=placements,
    )


async def at(engine: AsyncEngine, code: str, day: date, edition: Edition = "legacy") -> FigureDelta:
    async with engine.connect() as conn:
        unit = await read_unit(conn, edition, code, day)
    assert unit is not None
    return unit.counters


async def test_a_team_created_changed_and_dissolved_counts_between_its_dates(
    engine: AsyncEngine,
) -> None:
    team = uuid.uuid4()
    first, second = member(date(2023, 3, 1)), member(date(2023, 3, 1), trained=date(2023, 6, 1))
    created = team_state(team, 1, date(2023, 3, 1), (first, second), placements=(ON_2025,))
    third = member(date(2023, 9, 15))
    changed = team_state(
        team,
        2,
        date(2023, 3, 1),
        (second, third),
        former=(first.model_copy(update={"left_on": date(2023, 9, 15)}),),
        placements=(ON_2025,),
    )
    dissolved = changed.model_copy(
        update={"status": "dissolved", "dissolved_on": date(2024, 2, 1), "version": 3}
    )
    await apply(engine, *UNITS)
    await apply(engine, TeamCreated.new(edition="legacy", unit_path=VILLAGE, payload=created))
    await apply(
        engine, TeamMembersChanged.new(edition="legacy", unit_path=VILLAGE, payload=changed)
    )
    await apply(engine, TeamDissolved.new(edition="legacy", unit_path=VILLAGE, payload=dissolved))

    before = await at(engine, COMMUNE[-1], date(2023, 2, 28))
    on_established = await at(engine, COMMUNE[-1], date(2023, 3, 1))
    trained = await at(engine, COMMUNE[-1], date(2023, 6, 1))
    restaffed = await at(engine, COMMUNE[-1], date(2023, 9, 15))
    last_day = await at(engine, COMMUNE[-1], date(2024, 1, 31))
    on_dissolved = await at(engine, COMMUNE[-1], date(2024, 2, 1))

    assert (before.teams, before.members, before.covered_village) == (0, 0, 0)
    assert (on_established.teams, on_established.members, on_established.members_trained) == (
        1,
        2,
        0,
    )
    assert on_established.covered_village == 1
    assert trained.members_trained == 1
    assert (restaffed.members, restaffed.members_trained) == (2, 1)
    assert (last_day.teams, last_day.covered_village) == (1, 1)
    assert (on_dissolved.teams, on_dissolved.members, on_dissolved.covered_village) == (0, 0, 0)
    # The village itself: has a team on its dates only.
    assert (await at(engine, VILLAGE[-1], date(2023, 3, 1))).direct_teams == 1
    assert (await at(engine, VILLAGE[-1], date(2024, 2, 1))).direct_teams == 0
    # The same past on the 2025 map, where the team is placed.
    on_2025 = await at(engine, "04381", date(2023, 9, 15), "2025")
    province_2025 = await at(engine, "15", date(2023, 9, 15), "2025")
    assert (on_2025.teams, on_2025.members, on_2025.direct_teams) == (1, 2, 1)
    assert (province_2025.teams, province_2025.covered_commune) == (1, 1)
    assert (await at(engine, "15", date(2024, 2, 1), "2025")).teams == 0

    async with engine.connect() as conn:
        commune = await read_unit(conn, "legacy", COMMUNE[-1])
        assert commune is not None
        months = ["2023-01", "2023-02", "2023-03", "2023-09", "2024-01", "2024-02"]
        series = {
            m.month: m.counters
            for m in await read_series(conn, commune, months_between("2023-01", "2024-03"))
        }
    assert [(series[m].teams, series[m].covered_village) for m in months] == [
        (0, 0),
        (0, 0),
        (1, 1),
        (1, 1),
        (1, 1),
        (0, 0),
    ]
    assert series["2023-03"].total_village == 1  # totals: today's map


async def test_a_back_dated_team_arriving_after_later_events_rewrites_the_past(
    engine: AsyncEngine,
) -> None:
    late, early = uuid.uuid4(), uuid.uuid4()
    await apply(engine, *UNITS)
    # A team of the commune itself from 2024, then dissolved in 2024-06.
    await apply(
        engine,
        TeamDissolved.new(
            edition="legacy",
            unit_path=COMMUNE,
            payload=team_state(
                late,
                2,
                date(2024, 1, 10),
                (member(date(2024, 1, 10)),),
                path=COMMUNE,
                dissolved=date(2024, 6, 1),
            ),
        ),
        support_recorded(late, COMMUNE, residents=4, day=date(2024, 3, 5)),
    )
    assert (await at(engine, PROVINCE[-1], date(2023, 12, 31))).covered_commune == 0
    # Then a team registered late: the same commune since 2023, still active.
    await apply(
        engine,
        TeamCreated.new(
            edition="legacy",
            unit_path=COMMUNE,
            payload=team_state(
                early, 1, date(2023, 5, 1), (member(date(2023, 5, 1)),), path=COMMUNE
            ),
        ),
    )

    may = await at(engine, PROVINCE[-1], date(2023, 5, 1))
    both = await at(engine, PROVINCE[-1], date(2024, 3, 5))
    after = await at(engine, PROVINCE[-1], date(2024, 6, 1))
    assert (may.teams, may.covered_commune) == (1, 1)
    assert (both.teams, both.members, both.covered_commune) == (2, 2, 1)
    assert (both.support_events, both.support_residents) == (1, 4)
    assert (after.teams, after.covered_commune, after.support_events) == (1, 1, 1)
    assert (await at(engine, PROVINCE[-1], date(2024, 3, 4))).support_events == 0


async def test_a_shuffled_log_read_at_random_dates_gives_the_histories_of_the_definitions(
    engine: AsyncEngine,
) -> None:
    world = random_history(seed=23, provinces=2, operations=300)
    rng = random.Random(23)
    log = [*world.log, *rng.sample(world.log, len(world.log) // 4)]
    rng.shuffle(log)
    for start in range(0, len(log), 40):
        await apply(engine, *log[start : start + 40])

    keys = [FigureKey("legacy", NATIONAL), *(FigureKey("legacy", p[-1]) for p, _ in world.units)]
    days = [date.fromordinal(rng.randint(738_521, 739_283)) for _ in range(6)]
    for day in [date(2022, 12, 31), *days]:
        expected = recount_as_of(world, day)
        async with engine.connect() as conn:
            found = await read_figures(conn, keys, day)
        for unit in found:
            want = expected.get(unit.key, FigureDelta())
            names = (*HISTORY_COUNTERS, "support_events", "support_residents")
            got = {name: getattr(unit.counters, name) for name in names}
            assert got == {name: getattr(want, name) for name in names}, (unit.key, day)
            splits = support_splits(world, unit.key, day)
            assert (unit.by_category, unit.by_month) == splits, (unit.key, day)


def support_splits(
    world: World, key: FigureKey, day: date
) -> tuple[dict[str, SupportDelta], dict[str, SupportDelta]]:
    """Support up to the end of `day` in `key`'s subtree, by category and by month."""
    by_category: dict[str, SupportDelta] = {}
    by_month: dict[str, SupportDelta] = {}
    for path, category, occurred_on, residents, outcomes in world.support:
        if occurred_on > day or key not in scope_keys("legacy", path):
            continue
        one = SupportDelta(1, residents, *outcomes.counts())
        by_category.setdefault(category, SupportDelta()).add(one)
        by_month.setdefault(month_of(occurred_on), SupportDelta()).add(one)
    return by_category, by_month
