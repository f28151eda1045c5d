"""An in-memory ProjectionStore, and events built the way the producers build them."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from services.aggregator.domain import (
    DayKey,
    FigureDelta,
    FigureKey,
    SupportDayKey,
    SupportDelta,
    SupportKey,
    TargetRecord,
    TeamRecord,
    TeamSupportKey,
    UnitRecord,
)
from shared.contracts.events import (
    SupportRecorded,
    TeamCreated,
    TeamDissolved,
    TeamMembersChanged,
    TeamPlaced,
)
from shared.contracts.events.activity import NO_OUTCOMES, Category, Outcomes, SupportState
from shared.contracts.events.registry import (
    CameFrom,
    MemberState,
    Placement,
    TeamState,
    UnitRegistered,
    UnitState,
)
from shared.contracts.units import Edition, Level, UnitPath


@dataclass
class InMemoryProjectionStore:
    """What the SQL store keeps, in dicts; one instance is one always-committed database."""

    processed: set[uuid.UUID] = field(default_factory=set)
    units: dict[FigureKey, UnitRecord] = field(default_factory=dict)
    teams: dict[uuid.UUID, TeamRecord] = field(default_factory=dict)
    figures: dict[FigureKey, FigureDelta] = field(default_factory=dict)
    by_category: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    by_month: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    announced: list[frozenset[FigureKey]] = field(default_factory=list)
    team_months: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    history: dict[DayKey, FigureDelta] = field(default_factory=dict)
    by_day: dict[SupportDayKey, SupportDelta] = field(default_factory=dict)
    targets: dict[FigureKey, TargetRecord] = field(default_factory=dict)
    team_supports: dict[TeamSupportKey, SupportDelta] = field(default_factory=dict)

    async def claim_events(self, stream: str, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        fresh = set(event_ids) - self.processed
        self.processed |= fresh
        return fresh

    async def add_units(self, units: Sequence[UnitRecord]) -> list[UnitRecord]:
        added = []
        for unit in units:
            if unit.key not in self.units:
                self.units[unit.key] = unit
                added.append(unit)
        return added

    async def unit_paths(self, keys: Collection[FigureKey]) -> dict[FigureKey, UnitPath]:
        return {key: self.units[key].path for key in keys if key in self.units}

    async def lock_teams(self, candidates: Sequence[TeamRecord]) -> dict[uuid.UUID, TeamRecord]:
        return {t.team_id: self.teams[t.team_id] for t in candidates if t.team_id in self.teams}

    async def save_teams(self, teams: Sequence[TeamRecord]) -> None:
        for team in teams:
            self.teams[team.team_id] = team

    async def add_figures(
        self, deltas: Mapping[FigureKey, FigureDelta], report: Collection[FigureKey]
    ) -> dict[FigureKey, int]:
        for key, delta in deltas.items():
            self.figures.setdefault(key, FigureDelta()).add(delta)
        return {key: self.figures[key].direct_teams for key in report}

    async def direct_history(self, keys: Collection[FigureKey]) -> dict[FigureKey, dict[date, int]]:
        history: dict[FigureKey, dict[date, int]] = {}
        for (edition, code, day), delta in self.history.items():
            if FigureKey(edition, code) in keys and delta.direct_teams:
                history.setdefault(FigureKey(edition, code), {})[day] = delta.direct_teams
        return history

    async def add_history(self, deltas: Mapping[DayKey, FigureDelta]) -> None:
        for key, delta in deltas.items():
            self.history.setdefault(key, FigureDelta()).add(delta)

    async def add_support(
        self,
        by_category: Mapping[SupportKey, SupportDelta],
        by_month: Mapping[SupportKey, SupportDelta],
        by_day: Mapping[SupportDayKey, SupportDelta],
    ) -> None:
        for source, target in ((by_category, self.by_category), (by_month, self.by_month)):
            for key, delta in source.items():
                target.setdefault(key, SupportDelta()).add(delta)
        for day_key, delta in by_day.items():
            self.by_day.setdefault(day_key, SupportDelta()).add(delta)

    def figures_as_of(self, edition: Edition, code: str, day: date) -> FigureDelta:
        """The dated counters of one key at the end of `day` (the history summed up to it)."""
        total = FigureDelta()
        for key, delta in self.history.items():
            if (key.edition, key.code) == (edition, code) and key.day <= day:
                total.add(delta)
        return total

    async def save_targets(self, targets: Sequence[TargetRecord]) -> None:
        for target in targets:
            kept = self.targets.get(target.key)
            if kept is None or target.version > kept.version:
                self.targets[target.key] = target

    async def announce(self, changed: Collection[FigureKey]) -> None:
        self.announced.append(frozenset(changed))

    def figures_of(self, edition: Edition, code: str) -> FigureDelta:
        return self.figures.get(FigureKey(edition, code), FigureDelta())

    async def team_support(
        self, team_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, dict[TeamSupportKey, SupportDelta]]:
        stored: dict[uuid.UUID, dict[TeamSupportKey, SupportDelta]] = {}
        for key, counted in self.team_supports.items():
            if key.team_id in team_ids:
                stored.setdefault(key.team_id, {})[key] = SupportDelta(*counted.as_tuple())
        return stored

    async def add_team_support(self, deltas: Mapping[TeamSupportKey, SupportDelta]) -> None:
        for key, delta in deltas.items():
            self.team_supports.setdefault(key, SupportDelta()).add(delta)

    async def add_team_months(self, pairs: Collection[tuple[uuid.UUID, str]]) -> None:
        self.team_months |= set(pairs)

    def snapshot(self) -> tuple[object, ...]:
        """Everything served, zero rows left out (a row of zeros reads like no row)."""

        def nonzero[K, V: (FigureDelta, SupportDelta)](rows: dict[K, V]) -> dict[K, V]:
            return {k: v for k, v in rows.items() if v != type(v)()}

        return (
            nonzero(self.figures),
            nonzero(self.by_category),
            nonzero(self.by_month),
            set(self.units),
        )


def unit_registered(
    path: UnitPath,
    level: Level,
    *,
    edition: Edition = "legacy",
    name: str | None = None,
    centre: tuple[float, float] | None = None,
    came_from: tuple[CameFrom, ...] = (),
) -> UnitRegistered:
    code = path[-1]
    lat, lon = centre or (None, None)
    return UnitRegistered.new(
        edition=edition,
        unit_path=path,
        payload=UnitState(
            code=code,
            name=name or f"Đơn vị {code}",
            level=level,
            kind=level,
            parent_code=path[-2] if len(path) > 1 else None,
            lat=lat,
            lon=lon,
            came_from=came_from,
        ),
    )


def members(count: int, trained: int = 0) -> tuple[MemberState, ...]:
    """`count` members, the first `trained` of them trained."""
    roles = ("leader", "deputy", "member")
    return tuple(
        MemberState(
            member_id=uuid.uuid4(),
            full_name=f"Thành viên {n}",
            role=roles[min(n, 2)],
            trained_on=date(2022, 11, 30) if n < trained else None,
        )
        for n in range(count)
    )


TeamEventType = (
    type[TeamCreated] | type[TeamMembersChanged] | type[TeamDissolved] | type[TeamPlaced]
)


def team_event(
    kind: TeamEventType,
    team_id: uuid.UUID,
    path: UnitPath,
    level: Level,
    *,
    version: int,
    member_count: int,
    edition: Edition = "legacy",
    trained: int = 0,
    placements: tuple[Placement, ...] = (),
) -> TeamCreated | TeamMembersChanged | TeamDissolved | TeamPlaced:
    return kind.new(
        edition=edition,
        unit_path=path,
        payload=TeamState(
            team_id=team_id,
            unit_code=path[-1],
            unit_level=level,
            status="dissolved" if kind is TeamDissolved else "active",
            version=version,
            members=members(member_count, trained),
            placements=placements,
        ),
    )


def support_recorded(
    team_id: uuid.UUID,
    path: UnitPath,
    *,
    residents: int = 1,
    category: Category = "vneid",
    day: date = date(2024, 5, 17),
    edition: Edition = "legacy",
    outcomes: Outcomes = NO_OUTCOMES,
) -> SupportRecorded:
    return SupportRecorded.new(
        edition=edition,
        unit_path=path,
        payload=SupportState(
            team_id=team_id,
            unit_code=path[-1],
            occurred_on=day,
            category=category,
            residents_helped=residents,
            outcomes=outcomes,
        ),
    )
