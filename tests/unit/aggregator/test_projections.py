"""Projection logic with an in-memory store: each event type, versions, duplicates, coverage."""

from __future__ import annotations

import uuid
from datetime import date

from services.aggregator.domain import NATIONAL, FigureDelta, SupportDelta, SupportKey
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, TeamCreated, TeamDissolved, TeamMembersChanged
from shared.contracts.streams import ACTIVITY_EVENTS, REGISTRY_EVENTS
from tests.unit.aggregator.fakes import (
    InMemoryProjectionStore,
    support_recorded,
    team_event,
    unit_registered,
)

PROVINCE = ("15",)
DISTRICT = ("15", "136")
COMMUNE = ("15", "136", "04270")
VILLAGE = ("15", "136", "04270", "04270-001")
OTHER_VILLAGE = ("15", "136", "04270", "04270-002")
ALL_KEYS = (NATIONAL, "15", "136", "04270", "04270-001")


def yen_bai_units() -> list[Event]:
    return [
        unit_registered(PROVINCE, "province"),
        unit_registered(DISTRICT, "district"),
        unit_registered(COMMUNE, "commune"),
        unit_registered(VILLAGE, "village"),
        unit_registered(OTHER_VILLAGE, "village"),
    ]


async def applied(*batches: list[Event]) -> InMemoryProjectionStore:
    store = InMemoryProjectionStore()
    for batch in batches:
        await apply_batch(store, REGISTRY_EVENTS, batch)
    return store


async def test_a_unit_counts_in_the_totals_of_every_unit_above_it_not_in_its_own() -> None:
    store = await applied(yen_bai_units())

    national = store.figures_of("legacy", NATIONAL)
    assert (national.total_province, national.total_district) == (1, 1)
    assert (national.total_commune, national.total_village) == (1, 2)
    assert store.figures_of("legacy", "15").total_village == 2
    assert store.figures_of("legacy", "04270").total_village == 2
    assert store.figures_of("legacy", "04270").total_commune == 0
    # Every unit has a row, a village one of zeros.
    assert store.figures_of("legacy", "04270-001") == FigureDelta()
    assert set(store.units) >= {k for k in store.figures if k.code}


async def test_a_unit_registered_again_under_another_event_id_counts_once() -> None:
    store = await applied(yen_bai_units(), [unit_registered(VILLAGE, "village", name="Thôn 1")])

    assert store.figures_of("legacy", "04270").total_village == 2
    assert store.units[next(k for k in store.units if k.code == "04270-001")].name != "Thôn 1"


async def test_an_active_team_counts_in_teams_members_and_coverage_of_every_ancestor() -> None:
    team = uuid.uuid4()
    store = await applied(
        yen_bai_units(),
        [team_event(TeamCreated, team, VILLAGE, "village", version=1, member_count=7)],
    )

    for code in ALL_KEYS:
        figures = store.figures_of("legacy", code)
        assert (figures.teams, figures.members) == (1, 7), code
    assert store.figures_of("legacy", "04270-001").direct_teams == 1
    assert store.figures_of("legacy", "04270").direct_teams == 0
    for code in (NATIONAL, "15", "136", "04270"):
        figures = store.figures_of("legacy", code)
        assert (figures.covered_village, figures.total_village) == (1, 2), code
    assert store.figures_of("legacy", "04270-001").covered_village == 0


async def test_a_team_at_a_commune_covers_the_commune_level_above_it() -> None:
    team = uuid.uuid4()
    store = await applied(
        yen_bai_units(),
        [team_event(TeamCreated, team, COMMUNE, "commune", version=1, member_count=3)],
    )

    assert store.figures_of("legacy", "136").covered_commune == 1
    assert store.figures_of("legacy", "136").covered_village == 0
    assert store.figures_of("legacy", "04270").teams == 1
    assert store.figures_of("legacy", "04270-001").teams == 0


async def test_member_changes_move_members_and_dissolution_moves_every_ancestor_back() -> None:
    team = uuid.uuid4()
    created = team_event(TeamCreated, team, VILLAGE, "village", version=1, member_count=7)
    removed = team_event(TeamMembersChanged, team, VILLAGE, "village", version=2, member_count=5)
    dissolved = team_event(TeamDissolved, team, VILLAGE, "village", version=3, member_count=5)

    store = await applied(yen_bai_units(), [created], [removed])
    assert [store.figures_of("legacy", c).members for c in ALL_KEYS] == [5] * 5
    assert store.figures_of("legacy", "136").teams == 1

    await apply_batch(store, REGISTRY_EVENTS, [dissolved])
    for code in ALL_KEYS:
        figures = store.figures_of("legacy", code)
        assert (figures.teams, figures.members, figures.direct_teams) == (0, 0, 0), code
        assert figures.covered_village == 0, code
    assert store.figures_of("legacy", "15").total_village == 2


async def test_an_older_version_arriving_after_a_newer_one_changes_nothing() -> None:
    team = uuid.uuid4()
    created = team_event(TeamCreated, team, VILLAGE, "village", version=1, member_count=7)
    dissolved = team_event(TeamDissolved, team, VILLAGE, "village", version=2, member_count=7)

    store = await applied(yen_bai_units(), [dissolved], [created])

    assert store.figures_of("legacy", "15").teams == 0
    assert store.figures_of("legacy", "15").covered_village == 0
    assert store.teams[team].version == 2


async def test_the_newest_version_in_one_batch_wins_whatever_its_position() -> None:
    team = uuid.uuid4()
    versions: list[Event] = [
        team_event(TeamMembersChanged, team, VILLAGE, "village", version=3, member_count=9),
        team_event(TeamCreated, team, VILLAGE, "village", version=1, member_count=4),
        team_event(TeamMembersChanged, team, VILLAGE, "village", version=2, member_count=6),
    ]

    store = await applied(yen_bai_units() + versions)

    assert store.figures_of("legacy", NATIONAL).members == 9
    assert store.figures_of("legacy", NATIONAL).teams == 1


async def test_redelivered_events_in_one_batch_or_later_are_applied_once() -> None:
    team = uuid.uuid4()
    created = team_event(TeamCreated, team, VILLAGE, "village", version=1, member_count=2)
    support = support_recorded(team, VILLAGE, residents=12)
    store = InMemoryProjectionStore()
    await apply_batch(store, REGISTRY_EVENTS, [*yen_bai_units(), created, created])
    await apply_batch(store, ACTIVITY_EVENTS, [support, support])

    again = await apply_batch(store, ACTIVITY_EVENTS, [support])

    assert (again.received, again.applied) == (1, 0)
    national = store.figures_of("legacy", NATIONAL)
    assert (national.teams, national.members) == (1, 2)
    assert (national.support_events, national.support_residents) == (1, 12)


async def test_support_is_added_up_by_category_and_by_month_at_every_level() -> None:
    team = uuid.uuid4()
    events: list[Event] = [
        support_recorded(team, VILLAGE, residents=3, category="vneid", day=date(2024, 5, 2)),
        support_recorded(team, VILLAGE, residents=4, category="vneid", day=date(2024, 5, 30)),
        support_recorded(team, VILLAGE, residents=5, category="ecommerce", day=date(2024, 6, 1)),
    ]
    store = InMemoryProjectionStore()

    await apply_batch(store, ACTIVITY_EVENTS, events)

    for code in ALL_KEYS:
        figures = store.figures_of("legacy", code)
        assert (figures.support_events, figures.support_residents) == (3, 12), code
        assert store.by_category[SupportKey("legacy", code, "vneid")] == SupportDelta(2, 7)
        assert store.by_category[SupportKey("legacy", code, "ecommerce")] == SupportDelta(1, 5)
        assert store.by_month[SupportKey("legacy", code, "2024-05")] == SupportDelta(2, 7)
        assert store.by_month[SupportKey("legacy", code, "2024-06")] == SupportDelta(1, 5)
    assert store.figures_of("legacy", "04270-002").support_events == 0


async def test_a_unit_briefly_holding_two_teams_counts_as_covered_once() -> None:
    # The registry dissolved A then created B; the aggregator sees B's creation first.
    team_a, team_b = uuid.uuid4(), uuid.uuid4()
    a_created = team_event(TeamCreated, team_a, VILLAGE, "village", version=1, member_count=3)
    b_created = team_event(TeamCreated, team_b, VILLAGE, "village", version=1, member_count=4)
    a_dissolved = team_event(TeamDissolved, team_a, VILLAGE, "village", version=2, member_count=3)

    store = await applied(yen_bai_units(), [a_created], [b_created])
    commune = store.figures_of("legacy", "04270")
    assert (commune.teams, commune.covered_village) == (2, 1)

    await apply_batch(store, REGISTRY_EVENTS, [a_dissolved])
    commune = store.figures_of("legacy", "04270")
    assert (commune.teams, commune.members, commune.covered_village) == (1, 4, 1)


async def test_editions_are_kept_apart_though_codes_repeat() -> None:
    team = uuid.uuid4()
    store = await applied(
        [
            unit_registered(("15",), "province", edition="2025"),
            unit_registered(("15", "04270"), "commune", edition="2025"),
            *yen_bai_units(),
            team_event(
                TeamCreated,
                team,
                ("15", "04270"),
                "commune",
                version=1,
                member_count=2,
                edition="2025",
            ),
        ]
    )

    assert store.figures_of("2025", "15").covered_commune == 1
    assert store.figures_of("2025", NATIONAL).total_commune == 1
    assert store.figures_of("legacy", "15").teams == 0
    assert store.figures_of("legacy", NATIONAL).total_commune == 1


async def test_a_batch_announces_the_figures_it_changed() -> None:
    team = uuid.uuid4()
    store = await applied(yen_bai_units())

    await apply_batch(store, ACTIVITY_EVENTS, [support_recorded(team, OTHER_VILLAGE)])

    assert {k.code for k in store.announced[-1]} == {NATIONAL, "15", "136", "04270", "04270-002"}
