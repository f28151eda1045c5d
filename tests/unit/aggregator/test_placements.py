"""A legacy team on the 2025 map: counted where it is placed, waiting where it is not, and the
legacy province's teams conserved in its 2025 province whatever the delivery order."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.domain import (
    NATIONAL,
    FigureDelta,
    SupportDayKey,
    SupportDelta,
    SupportKey,
    month_of,
    scope_keys,
)
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import (
    Event,
    TeamCreated,
    TeamDissolved,
    TeamMembersChanged,
    TeamPlaced,
    decode_event,
)
from shared.contracts.events.registry import Placement
from shared.contracts.streams import REGISTRY_EVENTS
from tests.unit.aggregator.fakes import (
    InMemoryProjectionStore,
    support_recorded,
    team_event,
    unit_registered,
)

LEGACY = [
    unit_registered(("15",), "province"),
    unit_registered(("15", "136"), "district"),
    unit_registered(("15", "136", "04378"), "commune"),
    unit_registered(("15", "136", "04381"), "commune"),
    unit_registered(("15", "136", "04390"), "commune"),
]
NEW = [
    unit_registered(("15",), "province", edition="2025"),
    unit_registered(("15", "04381"), "commune", edition="2025"),
    unit_registered(("15", "04390"), "commune", edition="2025"),
]
ON_04381 = Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune")
ON_04390 = Placement(edition="2025", unit_path=("15", "04390"), unit_level="commune")
IN_PROVINCE = Placement(edition="2025", unit_path=("15",), unit_level=None)
WAITING = Placement(edition="2025", unit_path=("15",), unit_level=None, placed=False)


def figures(*batches: list[Event]) -> InMemoryProjectionStore:
    store = InMemoryProjectionStore()

    async def run() -> None:
        for batch in batches:
            await apply_batch(store, REGISTRY_EVENTS, batch)

    asyncio.run(run())
    return store


def test_two_whole_communes_merged_into_one_cover_it_once_with_both_teams() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    store = figures(
        [*LEGACY, *NEW],
        [
            team_event(
                TeamCreated,
                first,
                ("15", "136", "04378"),
                "commune",
                version=1,
                member_count=5,
                placements=(ON_04381,),
            ),
            team_event(
                TeamCreated,
                second,
                ("15", "136", "04381"),
                "commune",
                version=1,
                member_count=3,
                placements=(ON_04381,),
            ),
        ],
    )
    commune = store.figures_of("2025", "04381")
    assert (commune.teams, commune.members, commune.direct_teams) == (2, 8, 2)
    province = store.figures_of("2025", "15")
    assert (province.covered_commune, province.total_commune) == (1, 2)
    assert (province.unplaced_teams, province.unplaced_members) == (0, 0)
    # The legacy view is the map before the reform, unchanged.
    legacy = store.figures_of("legacy", "15")
    assert (legacy.teams, legacy.members, legacy.covered_commune) == (2, 8, 2)


def test_a_district_team_counts_in_the_province_and_covers_nothing() -> None:
    team = uuid.uuid4()
    store = figures(
        [*LEGACY, *NEW],
        [
            team_event(
                TeamCreated,
                team,
                ("15", "136"),
                "district",
                version=1,
                member_count=4,
                placements=(IN_PROVINCE,),
            )
        ],
    )
    province = store.figures_of("2025", "15")
    assert (province.teams, province.members, province.direct_teams) == (1, 4, 0)
    assert (province.covered_commune, store.figures_of("2025", NATIONAL).covered_province) == (0, 0)


def test_a_waiting_team_is_counted_as_unplaced_until_placed_then_moved() -> None:
    team = uuid.uuid4()
    path = ("15", "136", "04390")

    def event(kind: type, version: int, placement: Placement, count: int = 6) -> Event:
        return team_event(
            kind,
            team,
            path,
            "commune",
            version=version,
            member_count=count,
            placements=(placement,),
        )

    waiting = figures([*LEGACY, *NEW], [event(TeamCreated, 1, WAITING)])
    for code in (NATIONAL, "15"):
        row = waiting.figures_of("2025", code)
        assert (row.teams, row.unplaced_teams, row.unplaced_members) == (1, 1, 6), code
    assert waiting.figures_of("2025", "15").covered_commune == 0

    # Delivered backwards: the placement (v2) and the move (v3) before the creation.
    moved = figures(
        [*LEGACY, *NEW],
        [event(TeamPlaced, 3, ON_04390), event(TeamPlaced, 2, ON_04381)],
        [event(TeamCreated, 1, WAITING)],
    )
    province = moved.figures_of("2025", "15")
    assert (province.teams, province.unplaced_teams, province.covered_commune) == (1, 0, 1)
    assert moved.figures_of("2025", "04390").direct_teams == 1
    assert moved.figures_of("2025", "04381").direct_teams == 0


def test_dissolving_leaves_both_maps() -> None:
    team = uuid.uuid4()
    path = ("15", "136", "04378")
    store = figures(
        [*LEGACY, *NEW],
        [
            team_event(
                TeamCreated,
                team,
                path,
                "commune",
                version=1,
                member_count=2,
                placements=(ON_04381,),
            ),
            team_event(
                TeamMembersChanged,
                team,
                path,
                "commune",
                version=2,
                member_count=3,
                placements=(ON_04381,),
            ),
        ],
    )
    assert store.figures_of("2025", "04381").members == 3
    store = figures(
        [*LEGACY, *NEW],
        [
            team_event(
                TeamDissolved,
                team,
                path,
                "commune",
                version=3,
                member_count=3,
                placements=(ON_04381,),
            )
        ],
        [
            team_event(
                TeamCreated,
                team,
                path,
                "commune",
                version=1,
                member_count=2,
                placements=(ON_04381,),
            )
        ],
    )
    for edition in ("2025", "legacy"):
        assert store.figures_of(edition, NATIONAL).teams == 0
        assert store.figures_of(edition, "15").covered_commune == 0


def test_a_schema_1_team_event_still_reads_and_counts_on_its_own_map_only() -> None:
    team = uuid.uuid4()
    current = team_event(
        TeamCreated, team, ("15", "136", "04378"), "commune", version=1, member_count=2
    )
    old = json.loads(current.to_json())
    old["schema_version"] = 1
    del old["payload"]["placements"]
    event = decode_event(json.dumps(old))
    assert event.schema_version == 1
    store = figures([*LEGACY, *NEW], [event])
    assert store.figures_of("legacy", "15").teams == 1
    assert store.figures_of("2025", "15").teams == 0


def test_support_follows_its_team_from_unplaced_to_placed_to_moved_in_any_order() -> None:
    """Support recorded before the team is known, while it waits, and after each move
    counts in 2025 where the team is placed last, by category, month and day."""
    team = uuid.uuid4()
    path = ("15", "136", "04390")

    def event(kind: type, version: int, placement: Placement) -> Event:
        return team_event(
            kind, team, path, "commune", version=version, member_count=4, placements=(placement,)
        )

    support = [
        support_recorded(team, path, residents=3, day=date(2025, 8, 1)),
        support_recorded(
            team, path, residents=5, category="cashless_payment", day=date(2025, 9, 2)
        ),
    ]
    created, placed, moved = (
        event(TeamCreated, 1, WAITING),
        event(TeamPlaced, 2, ON_04381),
        event(TeamPlaced, 3, ON_04390),
    )
    orders = [
        [[*LEGACY, *NEW], [support[0]], [created], [support[1]], [placed], [moved]],
        [[*LEGACY, *NEW], [moved, support[1]], [created, placed], [support[0]]],
        [[*LEGACY, *NEW, *support, placed, created, moved]],
    ]
    waiting = figures([*LEGACY, *NEW], [created, *support])
    assert waiting.figures_of("2025", "15").support_residents == 8
    assert waiting.figures_of("2025", "04381").support_events == 0
    for batches in orders:
        store = figures(*batches)
        for edition, code in (("2025", "04390"), ("2025", "15"), ("2025", NATIONAL)):
            row = store.figures_of(edition, code)
            assert (row.support_events, row.support_residents) == (2, 8), code
            assert store.by_month[SupportKey(edition, code, "2025-09")].residents == 5
            assert store.by_category[SupportKey(edition, code, "cashless_payment")].events == 1
            day = SupportDayKey(edition, code, date(2025, 8, 1), "vneid")
            assert store.by_day[day].residents == 3
        assert store.figures_of("2025", "04381").support_events == 0
        passed = SupportKey("2025", "04381", "2025-09")
        assert store.by_month.get(passed, SupportDelta()) == SupportDelta()
        # Its own map counts it once, as before.
        assert store.figures_of("legacy", "15").support_residents == 8


SPOTS = (ON_04381, ON_04390, IN_PROVINCE, WAITING)
DAYS = (date(2024, 12, 31), date(2025, 7, 1), date(2025, 7, 2))
steps = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(("member", "place", "dissolve", "support")),
        st.integers(0, 3),
        st.integers(1, 5),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(steps=steps, seed=st.integers(0, 2**32 - 1))
def test_conservation_after_a_random_history_delivered_out_of_order_with_duplicates(
    steps: list[tuple[int, str, int, int]], seed: int
) -> None:
    """Legacy province 15's active teams and members = those counted in 2025 province 15
    (placed + unplaced), and every delivery gives the figures the in-order log gives; the
    teams' support (recorded before, between and after their events) counts in 2025 where
    each team is placed last, as a direct recount from the final placements says."""
    teams = [uuid.uuid4() for _ in range(4)]
    paths = [("15", "136", "04378"), ("15", "136"), ("15", "136", "04390"), ("15",)]
    levels = ["commune", "district", "commune", "province"]
    state: dict[int, tuple[int, str, int, Placement]] = {}
    log: list[Event] = [*LEGACY, *NEW]
    supported: list[tuple[int, date, int]] = []
    for index, action, spot, count in steps:
        team = state.get(index)
        placement = SPOTS[spot] if levels[index] == "commune" else IN_PROVINCE
        if action == "support":
            # Any time, even before the team's first event: the registry's may come later.
            supported.append((index, DAYS[spot % len(DAYS)], count))
            log.append(
                support_recorded(teams[index], paths[index], residents=count, day=supported[-1][1])
            )
            continue
        if team is None:
            state[index] = (1, "active", count, placement)
            kind: type = TeamCreated
        elif team[1] == "dissolved":
            continue
        elif action == "member":
            state[index] = (team[0] + 1, "active", count, team[3])
            kind = TeamMembersChanged
        elif action == "place":
            state[index] = (team[0] + 1, "active", team[2], placement)
            kind = TeamPlaced
        else:
            state[index] = (team[0] + 1, "dissolved", team[2], team[3])
            kind = TeamDissolved
        version, _, members, where = state[index]
        log.append(
            team_event(
                kind,
                teams[index],
                paths[index],
                levels[index],  # type: ignore[arg-type]
                version=version,
                member_count=members,
                placements=(where,),
            )
        )

    in_order = figures(log)
    shuffled = list(log) + random.Random(seed).sample(log, k=len(log) // 3)
    random.Random(seed + 1).shuffle(shuffled)
    size = 1 + seed % 7
    other = figures(*[shuffled[i : i + size] for i in range(0, len(shuffled), size)])
    assert other.snapshot() == in_order.snapshot()
    assert nonzero(other.by_day) == nonzero(in_order.by_day)

    recount: dict[object, SupportDelta] = {}
    for index, day, residents in supported:
        if index not in state:
            continue  # a team the registry never sent: counted on its own map only
        for key in scope_keys("2025", state[index][3].unit_path):
            for split_key in (
                key,
                SupportKey(key.edition, key.code, "vneid"),
                SupportKey(key.edition, key.code, month_of(day)),
                SupportDayKey(key.edition, key.code, day, "vneid"),
            ):
                recount.setdefault(split_key, SupportDelta()).add(SupportDelta(1, residents))
    counted: dict[object, SupportDelta] = {
        key: SupportDelta(row.support_events, row.support_residents)
        for key, row in other.figures.items()
        if key.edition == "2025"
    }
    for split in (other.by_category, other.by_month, other.by_day):
        counted |= {k: v for k, v in split.items() if k.edition == "2025"}
    assert nonzero(counted) == recount

    legacy = in_order.figures_of("legacy", "15")
    new = in_order.figures_of("2025", "15")
    assert (legacy.teams, legacy.members) == (new.teams, new.members)
    active = [s for s in state.values() if s[1] == "active"]
    waiting = [s for s in active if not s[3].placed]
    assert (new.unplaced_teams, new.unplaced_members) == (len(waiting), sum(s[2] for s in waiting))
    assert in_order.figures_of("2025", NATIONAL).unplaced_teams == len(waiting)
    assert FigureDelta() != new or not active


def nonzero[K](rows: dict[K, SupportDelta]) -> dict[K, SupportDelta]:
    return {key: row for key, row in rows.items() if row != SupportDelta()}


def test_support_of_a_team_registered_on_the_2025_map_counts_there_only() -> None:
    """A 2025 team has no legacy placement: its support is not kept per team."""
    team = uuid.uuid4()
    store = figures([*LEGACY, *NEW], [support_recorded(team, ("15", "04381"), edition="2025")])
    assert store.figures_of("2025", "04381").support_events == 1
    assert store.figures_of("legacy", NATIONAL).support_events == 0
    assert store.team_supports == {}
