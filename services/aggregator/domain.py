"""What the aggregator's figures are made of: keys, counters and levels; no I/O.

Every figure is kept per `FigureKey` (edition, unit code): the unit's whole subtree.
Each edition also has a synthetic national row, code `NATIONAL` (""), which no real
unit can have (unit codes are never empty), so national figures are one key read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Final, NamedTuple

from shared.contracts.events.activity import CATEGORIES, OUTCOME_KINDS, Category, OutcomeKind
from shared.contracts.events.registry import TeamStatus
from shared.contracts.units import EDITION_LEVELS, Edition, Level, UnitPath

NATIONAL: Final = ""
NATIONAL_NAME: Final = "Việt Nam"
NATIONAL_LEVEL: Final = "national"


class FigureKey(NamedTuple):
    """One row of figures: a unit's subtree, or a whole edition when `code` is NATIONAL."""

    edition: Edition
    code: str

    @property
    def is_national(self) -> bool:
        return self.code == NATIONAL


class DayKey(NamedTuple):
    """One day of a unit's (or a nation's) history: the changes dated on that day."""

    edition: Edition
    code: str
    day: date


def scope_keys(edition: Edition, unit_path: UnitPath) -> list[FigureKey]:
    """The keys whose subtree holds the unit at the end of `unit_path`: nation first."""
    return [FigureKey(edition, NATIONAL), *(FigureKey(edition, code) for code in unit_path)]


def ancestor_keys(edition: Edition, unit_path: UnitPath) -> list[FigureKey]:
    """The keys strictly above the unit: they count it in their covered/total figures."""
    return scope_keys(edition, unit_path)[:-1]


def levels_below(edition: Edition, level: Level | None) -> tuple[Level, ...]:
    """Levels a unit's coverage is reported for; `None` (national) gets every level."""
    levels = EDITION_LEVELS[edition]
    if level is None:
        return levels
    return levels[levels.index(level) + 1 :] if level in levels else ()


@dataclass(slots=True)
class FigureDelta:
    """Counters of one figures row, or a change to them; field names are column names."""

    teams: int = 0
    members: int = 0
    # Members of those teams with a trained_on.
    members_trained: int = 0
    # Active teams attached to this very unit (covered when > 0); only meaningful on units.
    direct_teams: int = 0
    covered_province: int = 0
    covered_district: int = 0
    covered_commune: int = 0
    covered_village: int = 0
    total_province: int = 0
    total_district: int = 0
    total_commune: int = 0
    total_village: int = 0
    support_events: int = 0
    support_residents: int = 0
    # Teams (and their members) counted in this subtree that wait for a placement on this
    # map (the 2025 reform: split or unmapped communes); on provinces and the nation only.
    unplaced_teams: int = 0
    unplaced_members: int = 0
    # Outcomes of support (OUTCOME_KINDS): zero for events recorded without them.
    vneid_activations: int = 0
    public_service_dossiers: int = 0
    payment_accounts: int = 0
    ecommerce_accounts: int = 0
    other_accounts: int = 0

    def add(self, other: FigureDelta) -> None:
        # Spelled out: this runs for every key of every event of every batch.
        self.teams += other.teams
        self.members += other.members
        self.members_trained += other.members_trained
        self.direct_teams += other.direct_teams
        self.covered_province += other.covered_province
        self.covered_district += other.covered_district
        self.covered_commune += other.covered_commune
        self.covered_village += other.covered_village
        self.total_province += other.total_province
        self.total_district += other.total_district
        self.total_commune += other.total_commune
        self.total_village += other.total_village
        self.support_events += other.support_events
        self.support_residents += other.support_residents
        self.unplaced_teams += other.unplaced_teams
        self.unplaced_members += other.unplaced_members
        self.vneid_activations += other.vneid_activations
        self.public_service_dossiers += other.public_service_dossiers
        self.payment_accounts += other.payment_accounts
        self.ecommerce_accounts += other.ecommerce_accounts
        self.other_accounts += other.other_accounts

    def is_zero(self) -> bool:
        return not any(getattr(self, name) for name in COUNTERS)

    def as_tuple(self) -> tuple[int, ...]:
        """The counters in COUNTERS order."""
        return (
            self.teams,
            self.members,
            self.members_trained,
            self.direct_teams,
            self.covered_province,
            self.covered_district,
            self.covered_commune,
            self.covered_village,
            self.total_province,
            self.total_district,
            self.total_commune,
            self.total_village,
            self.support_events,
            self.support_residents,
            self.unplaced_teams,
            self.unplaced_members,
            self.vneid_activations,
            self.public_service_dossiers,
            self.payment_accounts,
            self.ecommerce_accounts,
            self.other_accounts,
        )

    def outcomes(self) -> dict[OutcomeKind, int]:
        return dict(zip(OUTCOME_KINDS, self.as_tuple()[-len(OUTCOME_KINDS) :], strict=True))

    def covered(self, level: Level) -> int:
        value: int = getattr(self, f"covered_{level}")
        return value

    def total(self, level: Level) -> int:
        value: int = getattr(self, f"total_{level}")
        return value


COUNTERS: Final = tuple(f.name for f in fields(FigureDelta))
# What the history keeps per day: the counters teams change (units carry no dates: totals
# are today's map; support is dated on its own, per day and category).
HISTORY_COUNTERS: Final = (
    "teams",
    "members",
    "members_trained",
    "direct_teams",
    "covered_province",
    "covered_district",
    "covered_commune",
    "covered_village",
    "unplaced_teams",
    "unplaced_members",
)


class SupportKey(NamedTuple):
    """Support figures of one unit's subtree split by a category or by a month."""

    edition: Edition
    code: str
    bucket: str


class SupportDayKey(NamedTuple):
    """Support of one unit's subtree on one day (occurred_on) in one category."""

    edition: Edition
    code: str
    day: date
    category: str


# Editions whose teams are placed on the other map: a legacy team in 2025; a team registered
# on the 2025 map has no legacy placement, so its support counts on its own map only and is
# neither kept per team nor waits for its team's lock.
PLACED_ON_THE_OTHER_MAP: Final[frozenset[Edition]] = frozenset({"legacy"})


class TeamSupportKey(NamedTuple):
    """One team's support on one day (occurred_on) in one category: what follows the team
    to wherever it is placed on the other map, and moves when it is placed elsewhere."""

    team_id: uuid.UUID
    day: date
    category: str


@dataclass(slots=True)
class SupportDelta:
    """Support counted in one split bucket: events, residents, and outcomes by kind."""

    events: int = 0
    residents: int = 0
    vneid_activations: int = 0
    public_service_dossiers: int = 0
    payment_accounts: int = 0
    ecommerce_accounts: int = 0
    other_accounts: int = 0

    def add(self, other: SupportDelta) -> None:
        self.events += other.events
        self.residents += other.residents
        self.vneid_activations += other.vneid_activations
        self.public_service_dossiers += other.public_service_dossiers
        self.payment_accounts += other.payment_accounts
        self.ecommerce_accounts += other.ecommerce_accounts
        self.other_accounts += other.other_accounts

    def as_tuple(self) -> tuple[int, ...]:
        """The counters in SUPPORT_COUNTERS order."""
        return (
            self.events,
            self.residents,
            self.vneid_activations,
            self.public_service_dossiers,
            self.payment_accounts,
            self.ecommerce_accounts,
            self.other_accounts,
        )

    def outcomes(self) -> dict[OutcomeKind, int]:
        return dict(zip(OUTCOME_KINDS, self.as_tuple()[2:], strict=True))


SUPPORT_COUNTERS: Final = tuple(f.name for f in fields(SupportDelta))


def month_of(day: date) -> str:
    """The bucket a support event counts in: its month, "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """A unit as the aggregator keeps it: enough to name it and roll it up."""

    edition: Edition
    code: str
    name: str
    level: Level
    parent_code: str | None
    path: UnitPath
    # The unit's centre, for the map; None for villages and schema-1 events.
    lat: float | None = None
    lon: float | None = None
    # A 2025 unit's legacy predecessors: (code, partly), from schema-3 events.
    came_from: tuple[tuple[str, bool], ...] = ()

    @property
    def key(self) -> FigureKey:
        return FigureKey(self.edition, self.code)


@dataclass(frozen=True, slots=True)
class Spot:
    """One place a team counts: its own unit, or its placement on the other map.

    `level` None: it counts in the teams and members of `path` (a province) but covers no
    unit; `placed` False: it also counts as waiting for a placement there.
    """

    edition: Edition
    path: UnitPath
    level: Level | None
    placed: bool = True

    @property
    def unit_key(self) -> FigureKey:
        return FigureKey(self.edition, self.path[-1])


class MemberStep(NamedTuple):
    day: date
    members: int
    trained: int


def member_steps(
    established_on: date,
    dissolved_on: date | None,
    periods: Sequence[tuple[date, date | None, date | None]],
) -> tuple[MemberStep, ...]:
    """Members counted each day, as changes by day: `periods` are (joined, left, trained).

    A member counts from joined_on until the day before left_on, and only while the team
    does (from established_on until the day before dissolved_on); trained from trained_on
    on, within that.
    """
    steps: dict[date, list[int]] = {}

    def step(day: date, members: int, trained: int) -> None:
        row = steps.setdefault(day, [0, 0])
        row[0] += members
        row[1] += trained

    for joined, left, trained_on in periods:
        start = max(joined, established_on)
        ends = [d for d in (left, dissolved_on) if d is not None]
        end = min(ends) if ends else None
        if end is not None and start >= end:
            continue
        step(start, 1, 0)
        if end is not None:
            step(end, -1, 0)
        if trained_on is not None:
            trained_from = max(start, trained_on)
            if end is None or trained_from < end:
                step(trained_from, 0, 1)
                if end is not None:
                    step(end, 0, -1)
    return tuple(
        MemberStep(day, members, trained)
        for day, (members, trained) in sorted(steps.items())
        if members or trained
    )


def covered_steps(direct_steps: Mapping[date, int]) -> dict[date, int]:
    """A unit's coverage by day (+1 the day its first active team starts, -1 the day the
    last one stops) from its active-team count as changes by day."""
    covered: dict[date, int] = {}
    running = 0
    for day in sorted(direct_steps):
        before = running
        running += direct_steps[day]
        if (before > 0) != (running > 0):
            covered[day] = 1 if running > 0 else -1
    return covered


@dataclass(frozen=True, slots=True)
class TeamRecord:
    """The newest state of a team seen so far, and what it contributes to the figures."""

    team_id: uuid.UUID
    edition: Edition
    version: int
    status: TeamStatus
    unit_path: UnitPath
    unit_level: Level
    member_count: int
    trained_count: int = 0
    # Its placements on the other map (none before schema 2 or for a 2025 team).
    placements: tuple[Spot, ...] = ()
    # Business dates; None for a state stored before the history was kept (it added
    # nothing to the history, so it subtracts nothing either).
    established_on: date | None = None
    dissolved_on: date | None = None
    # Its members' history: (day, members joining minus leaving, trained likewise), by day,
    # already clipped to the team's own dates.
    member_steps: tuple[MemberStep, ...] = ()

    @property
    def active(self) -> bool:
        return self.status == "active"

    def spots(self) -> tuple[Spot, ...]:
        """Every place the team counts: its own unit first, then its placements."""
        return (Spot(self.edition, self.unit_path, self.unit_level), *self.placements)

    @property
    def unit_key(self) -> FigureKey:
        return FigureKey(self.edition, self.unit_path[-1])


@dataclass(frozen=True, slots=True)
class TargetRecord:
    """A unit's newest target (`target.set`): what its figures are measured against."""

    edition: Edition
    code: str
    version: int
    due: date | None = None
    covered_pct: dict[Level, float] = field(default_factory=dict)
    members_trained_pct: float | None = None
    outcomes: dict[OutcomeKind, int] = field(default_factory=dict)

    @property
    def key(self) -> FigureKey:
        return FigureKey(self.edition, self.code)


@dataclass(frozen=True, slots=True)
class TargetProgress:
    """One part of a target against the figure it aims at; `progress` = actual / target."""

    figure: str  # "covered_pct.commune", "members_trained_pct", "outcomes.vneid_activations"
    target: float
    actual: float | None  # None: nothing to measure yet (no units at the level, no members)
    progress: float | None  # None when `actual` is None or the target is 0
    due: date | None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def target_progress(target: TargetRecord, counters: FigureDelta) -> list[TargetProgress]:
    """Each part of the target with its actual figure, in a fixed order (levels, trained,
    outcome kinds)."""
    parts: list[tuple[str, float, float | None]] = [
        (
            f"covered_pct.{level}",
            pct,
            _percent(counters.covered(level), counters.total(level)),
        )
        for level, pct in target.covered_pct.items()
    ]
    if target.members_trained_pct is not None:
        parts.append(
            (
                "members_trained_pct",
                target.members_trained_pct,
                _percent(counters.members_trained, counters.members),
            )
        )
    actual_outcomes = counters.outcomes()
    parts += [
        (f"outcomes.{kind}", target.outcomes[kind], actual_outcomes[kind])
        for kind in OUTCOME_KINDS
        if kind in target.outcomes
    ]
    return [
        TargetProgress(
            figure=name,
            target=aim,
            actual=actual,
            progress=round(actual / aim, 4) if actual is not None and aim else None,
            due=target.due,
        )
        for name, aim, actual in parts
    ]


@dataclass(slots=True)
class UnitFigures:
    """The figures of one unit (or a nation) as served: counters and support split."""

    key: FigureKey
    name: str
    level: Level | None  # None for a national row
    path: UnitPath
    counters: FigureDelta
    by_category: dict[Category, SupportDelta] = field(default_factory=dict)
    by_month: dict[str, SupportDelta] = field(default_factory=dict)
    target: TargetRecord | None = None

    @property
    def has_team(self) -> bool | None:
        return None if self.key.is_national else self.counters.direct_teams > 0

    def coverage_levels(self) -> tuple[Level, ...]:
        return levels_below(self.key.edition, self.level)

    def category_figures(self) -> dict[Category, SupportDelta]:
        """Every category, in the contract's order, zero where nothing was recorded."""
        return {c: self.by_category.get(c, SupportDelta()) for c in CATEGORIES}


def inbox_cutoff(
    now: datetime, floors: Sequence[datetime | None], retention: timedelta
) -> datetime | None:
    """Processed event ids recorded before this may be forgotten; None: keep them all.

    An id can come back only in an entry the group has yet to be handed (at or after its
    delivery floor on each stream) or in a replay of an outbox row, which the producers
    keep `outbox_retention` after sending: the event was processed at most that long
    before the replayed entry was added. So an id recorded `retention` (≥ the outbox's)
    before the oldest floor, or before now if that is sooner, cannot come back. A stream
    whose floor is unknown (no stream or no group yet) holds the purge back entirely.
    """
    if not floors or any(floor is None for floor in floors):
        return None
    oldest = min(floor for floor in floors if floor is not None)
    return min(now, oldest) - retention
