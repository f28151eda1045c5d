"""A simulated registry and activity history: its event log and its figures by definition.

Used by the property test (hypothesis draws the history) and by the integration tests
(a seeded random history) to compare what the projections make of the log, delivered
in any order, with a recount from the final state.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.aggregator.domain import (
    FigureDelta,
    FigureKey,
    SupportDelta,
    SupportKey,
    ancestor_keys,
    month_of,
    scope_keys,
)
from shared.contracts.events import Event, TeamCreated, TeamDissolved, TeamMembersChanged
from shared.contracts.events.activity import (
    CATEGORIES,
    NO_OUTCOMES,
    OUTCOME_KINDS,
    OUTCOMES_PER_RESIDENT,
    Category,
    Outcomes,
)
from shared.contracts.events.registry import MemberState, TeamState
from shared.contracts.units import Level, UnitPath
from tests.unit.aggregator.fakes import TeamEventType, members, support_recorded, unit_registered

Shape = list[list[list[int]]]
Operation = tuple[str, int, int, Category, date]
OPERATIONS = ("create", "members", "dissolve", "support")


@dataclass
class Team:
    team_id: uuid.UUID
    path: UnitPath
    level: Level
    members: int
    version: int = 1
    active: bool = True
    trained: int = 0
    # Business dates: each change is dated on its operation's day, never before the last.
    established_on: date = date(2023, 1, 1)
    dissolved_on: date | None = None
    last_day: date = date(2023, 1, 1)
    current: list[MemberState] = field(default_factory=list)
    former: list[MemberState] = field(default_factory=list)

    def restaff(self, count: int, trained: int, day: date) -> None:
        """Keep the first `count` members (the rest leave on `day`), add new ones joining on
        `day`; the first `trained` are trained (on `day` unless they were already)."""
        kept, leaving = self.current[:count], self.current[count:]
        self.former += [m.model_copy(update={"left_on": day}) for m in leaving]
        fresh = members(count - len(kept))
        kept += [m.model_copy(update={"joined_on": day, "trained_on": None}) for m in fresh]
        self.current = [
            m.model_copy(update={"trained_on": (m.trained_on or day) if n < trained else None})
            for n, m in enumerate(kept)
        ]
        self.members, self.trained = count, trained

    def event(self, kind: TeamEventType) -> Event:
        return kind.new(
            edition="legacy",
            unit_path=self.path,
            payload=TeamState(
                team_id=self.team_id,
                unit_code=self.path[-1],
                unit_level=self.level,
                status="active" if self.active else "dissolved",
                established_on=self.established_on,
                dissolved_on=self.dissolved_on,
                version=self.version,
                members=tuple(self.current),
                former_members=tuple(self.former),
            ),
        )


@dataclass
class World:
    """The producers' state after the history, and the log of events it emitted."""

    units: list[tuple[UnitPath, Level]] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)
    support: list[tuple[UnitPath, Category, date, int, Outcomes]] = field(default_factory=list)
    log: list[Event] = field(default_factory=list)


def build_tree(shape: Shape) -> list[tuple[UnitPath, Level]]:
    """Units of the legacy edition: shape[p][d][c] = number of villages of that commune."""
    units: list[tuple[UnitPath, Level]] = []
    for p, districts in enumerate(shape):
        province = (f"{p + 1:02d}",)
        units.append((province, "province"))
        for d, communes in enumerate(districts):
            district = (*province, f"{p + 1}{d:02d}")
            units.append((district, "district"))
            for c, villages in enumerate(communes):
                commune = (*district, f"{p + 1}{d:02d}{c:02d}")
                units.append((commune, "commune"))
                units.extend(
                    ((*commune, f"{commune[-1]}-{v:03d}"), "village") for v in range(villages)
                )
    return units


def outcomes_of(pick: int, residents: int) -> Outcomes:
    """Outcomes drawn from `pick` within the contract's bounds; a quarter carry none (as
    events of schema version 1 do)."""
    if pick % 4 == 0:
        return NO_OUTCOMES
    limit = residents * OUTCOMES_PER_RESIDENT
    counts = ((pick >> (3 * i)) % (limit + 1) for i in range(len(OUTCOME_KINDS)))
    return Outcomes(**dict(zip(OUTCOME_KINDS, counts, strict=True)))


def simulate(
    shape: list[list[list[int]]], ops: list[tuple[str, int, int, Category, date]]
) -> World:
    """Run the history as the registry and activity would, rules included."""
    world = World(units=build_tree(shape))
    world.log.extend(unit_registered(path, level) for path, level in world.units)
    for op, pick, amount, category, day in ops:
        if op == "create":
            path, level = world.units[pick % len(world.units)]
            if any(t.active and t.path == path for t in world.teams):
                continue  # one active team per unit: the registry answers 409
            team = Team(uuid.uuid4(), path, level, 0, established_on=day, last_day=day)
            team.restaff(amount, pick % (amount + 1), day)
            world.teams.append(team)
            world.log.append(team.event(TeamCreated))
            continue
        if not world.teams:
            continue
        team = world.teams[pick % len(world.teams)]
        if not team.active:
            continue  # a dissolved team changes no more and records no support
        if op == "support":
            outcomes = outcomes_of(pick, amount)
            world.support.append((team.path, category, day, amount, outcomes))
            world.log.append(
                support_recorded(
                    team.team_id,
                    team.path,
                    residents=amount,
                    category=category,
                    day=day,
                    outcomes=outcomes,
                )
            )
            continue
        team.version += 1
        kind = TeamDissolved if op == "dissolve" else TeamMembersChanged
        # Dates run forward per team (the registry refuses a change before the last one).
        team.last_day = max(team.last_day, day)
        if op == "members":
            team.restaff(amount, pick % (amount + 1), team.last_day)
        else:
            team.active, team.dissolved_on = False, team.last_day
        world.log.append(team.event(kind))
    return world


Recount = tuple[
    dict[FigureKey, FigureDelta],
    dict[SupportKey, SupportDelta],
    dict[SupportKey, SupportDelta],
    set[FigureKey],
]


def recount(world: World) -> Recount:
    """The figures by their definitions, straight from the final state."""
    figures: dict[FigureKey, FigureDelta] = {}
    by_category: dict[SupportKey, SupportDelta] = {}
    by_month: dict[SupportKey, SupportDelta] = {}

    def add(key: FigureKey, **counts: int) -> None:
        row = figures.setdefault(key, FigureDelta())
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)

    for path, level in world.units:
        for key in ancestor_keys("legacy", path):
            add(key, **{f"total_{level}": 1})
    for team in world.teams:
        if not team.active:
            continue
        for key in scope_keys("legacy", team.path):
            add(key, teams=1, members=team.members, members_trained=team.trained)
        add(FigureKey("legacy", team.path[-1]), direct_teams=1)
        for key in ancestor_keys("legacy", team.path):
            add(key, **{f"covered_{team.level}": 1})
    for path, category, day, residents, outcomes in world.support:
        for key in scope_keys("legacy", path):
            kinds = dict(zip(OUTCOME_KINDS, outcomes.counts(), strict=True))
            add(key, support_events=1, support_residents=residents, **kinds)
            one = SupportDelta(1, residents, *outcomes.counts())
            by_category.setdefault(SupportKey(key.edition, key.code, category), SupportDelta()).add(
                one
            )
            by_month.setdefault(
                SupportKey(key.edition, key.code, month_of(day)), SupportDelta()
            ).add(one)
    nonzero_figures = {k: v for k, v in figures.items() if not v.is_zero()}
    units = {FigureKey("legacy", path[-1]) for path, _ in world.units}
    return nonzero_figures, by_category, by_month, units


def recount_as_of(world: World, day: date) -> dict[FigureKey, FigureDelta]:
    """The dated counters (HISTORY_COUNTERS, and support events and residents by occurred_on)
    at the end of `day`, by their definitions."""
    figures: dict[FigureKey, FigureDelta] = {}

    def add(key: FigureKey, **counts: int) -> None:
        row = figures.setdefault(key, FigureDelta())
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)

    def counts(joined: date | None, left: date | None) -> bool:
        return joined is not None and joined <= day and (left is None or day < left)

    covered: set[UnitPath] = set()
    for team in world.teams:
        if not counts(team.established_on, team.dissolved_on):
            continue
        present = [m for m in (*team.current, *team.former) if counts(m.joined_on, m.left_on)]
        trained = sum(m.trained_on is not None and m.trained_on <= day for m in present)
        for key in scope_keys("legacy", team.path):
            add(key, teams=1, members=len(present), members_trained=trained)
        add(FigureKey("legacy", team.path[-1]), direct_teams=1)
        if team.path not in covered:
            covered.add(team.path)
            for key in ancestor_keys("legacy", team.path):
                add(key, **{f"covered_{team.level}": 1})
    for path, _, occurred_on, residents, _ in world.support:
        if occurred_on <= day:
            for key in scope_keys("legacy", path):
                add(key, support_events=1, support_residents=residents)
    return {k: v for k, v in figures.items() if not v.is_zero()}


def random_history(seed: int, *, provinces: int = 3, operations: int = 400) -> World:
    """A history drawn from a seeded generator (the integration tests' larger logs)."""
    rng = random.Random(seed)
    shape = [
        [[rng.randint(0, 4) for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 3))]
        for _ in range(provinces)
    ]
    ops: list[Operation] = [
        (
            rng.choice(OPERATIONS),
            rng.randint(0, 10_000),
            rng.randint(1, 6),
            rng.choice(CATEGORIES),
            date(2023, 1, 1) + timedelta(days=rng.randint(0, 700)),
        )
        for _ in range(operations)
    ]
    return simulate(shape, ops)
