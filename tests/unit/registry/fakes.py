"""In-memory stand-ins for the registry's repositories and unit of work (no I/O).

They keep the rules the database keeps for the SQL adapters (a unit's code once per
edition, one active team per unit, a team saved only over the version it was loaded at),
so a use case that broke one fails here as it would against PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.registry.domain import Team, Unit
from services.registry.placements import Link, LinkLevel
from services.registry.targets import Target
from shared.contracts.events.registry import RegistryEvent
from shared.contracts.units import Edition, Level
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, make_unit


class IntegrityError(Exception):
    """What PostgreSQL would refuse: a duplicate key, a missing parent, a second active team."""


@dataclass
class FakeUnits:
    rows: dict[tuple[Edition, str], Unit] = field(default_factory=dict)

    async def get(self, edition: Edition, code: str, *, lock: bool = False) -> Unit | None:
        return self.rows.get((edition, code))

    async def children(
        self, edition: Edition, parent_code: str, level: Level | None = None
    ) -> list[Unit]:
        found = [
            unit
            for unit in self.rows.values()
            if unit.edition == edition
            and unit.parent_code == parent_code
            and (level is None or unit.level == level)
        ]
        return sorted(found, key=lambda unit: unit.code)

    async def at_level(self, edition: Edition, level: Level) -> list[Unit]:
        found = [u for u in self.rows.values() if u.edition == edition and u.level == level]
        return sorted(found, key=lambda unit: unit.code)

    async def child_codes(self, edition: Edition, parent_code: str) -> list[str]:
        return [unit.code for unit in await self.children(edition, parent_code)]

    async def add(self, unit: Unit) -> None:
        key = (unit.edition, unit.code)
        if key in self.rows:
            raise IntegrityError(f"unit {key} exists")
        if unit.parent_code is not None and (unit.edition, unit.parent_code) not in self.rows:
            raise IntegrityError(f"parent of {key} is not registered")
        self.rows[key] = unit

    async def add_new(self, batch: Sequence[Unit]) -> list[Unit]:
        new = [unit for unit in batch if (unit.edition, unit.code) not in self.rows]
        for unit in new:
            await self.add(unit)
        return new


@dataclass
class FakeTeams:
    # Insertion order stands for created_at: of_unit lists the newest first.
    rows: dict[uuid.UUID, Team] = field(default_factory=dict)

    async def get(self, team_id: uuid.UUID, *, lock: bool = False) -> Team | None:
        return self.rows.get(team_id)

    async def of_unit(self, edition: Edition, unit_code: str) -> list[Team]:
        found = [t for t in self.rows.values() if (t.edition, t.unit_code) == (edition, unit_code)]
        return found[::-1]

    async def active_team_id(self, edition: Edition, unit_code: str) -> uuid.UUID | None:
        return next(
            (t.team_id for t in await self.of_unit(edition, unit_code) if t.status == "active"),
            None,
        )

    async def add(self, team: Team) -> None:
        if team.team_id in self.rows:
            raise IntegrityError(f"team {team.team_id} exists")
        if team.status == "active" and await self.active_team_id(team.edition, team.unit_code):
            raise IntegrityError(f"unit {team.unit_code} already has an active team")
        self.rows[team.team_id] = team

    async def save(self, before: Team, after: Team) -> None:
        stored = self.rows.get(after.team_id)
        if stored is None or stored.version != before.version:
            # What the SQL adapter raises when its version-guarded UPDATE matches no row.
            raise RuntimeError(f"team {after.team_id} changed under a lock; version mismatch")
        self.rows[after.team_id] = after

    async def awaiting_placement(self, edition: Edition, province_code: str) -> list[Team]:
        return [
            team
            for team in self.rows.values()
            if team.status == "active"
            and (p := team.placement_in(edition)) is not None
            and not p.placed
            and p.unit_path[0] == province_code
        ][::-1]

    async def without_placement(
        self, edition: Edition, *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        waiting = sorted(
            team.team_id
            for team in self.rows.values()
            if team.edition != edition and team.placement_in(edition) is None
        )
        return [t for t in waiting if after is None or t > after][:limit]


@dataclass
class FakeLinks:
    units: FakeUnits
    rows: set[Link] = field(default_factory=set)

    async def add_new(self, links: Sequence[Link]) -> int:
        new = {(link.level, link.legacy_code, link.new_code): link for link in links}
        stored = {(link.level, link.legacy_code, link.new_code) for link in self.rows}
        fresh = [link for key, link in new.items() if key not in stored]
        self.rows.update(fresh)
        return len(fresh)

    async def linked(
        self, edition: Edition, level: LinkLevel, code: str
    ) -> list[tuple[Unit, bool]]:
        other: Edition = "2025" if edition == "legacy" else "legacy"
        found = []
        for link in self.rows:
            mine, theirs = (
                (link.legacy_code, link.new_code)
                if edition == "legacy"
                else (link.new_code, link.legacy_code)
            )
            unit = self.units.rows.get((other, theirs))
            if link.level == level and mine == code and unit is not None:
                found.append((unit, link.partly))
        return sorted(found, key=lambda pair: pair[0].code)


@dataclass
class FakeTargets:
    units: FakeUnits
    rows: dict[tuple[Edition, str], Target] = field(default_factory=dict)

    async def get(self, edition: Edition, code: str) -> Target | None:
        return self.rows.get((edition, code))

    async def save(self, target: Target) -> None:
        self.rows[(target.edition, target.code)] = target

    async def under(self, edition: Edition, parent_code: str | None) -> list[Target]:
        return [
            target
            for (e, code), target in sorted(self.rows.items())
            if e == edition and self.units.rows[(e, code)].parent_code == parent_code
        ]


@dataclass
class FakeUnitOfWork:
    """One always-committed database: what a use case wrote stays, and `published` holds the
    events it queued in the outbox, in order."""

    units: FakeUnits = field(default_factory=FakeUnits)
    teams: FakeTeams = field(default_factory=FakeTeams)
    published: list[RegistryEvent] = field(default_factory=list)
    links: FakeLinks = field(init=False)
    targets: FakeTargets = field(init=False)

    def __post_init__(self) -> None:
        self.links = FakeLinks(self.units)
        self.targets = FakeTargets(self.units)

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        self.published.extend(events)


def legacy_map() -> list[Unit]:
    """Yên Bái (15) → Văn Yên (136) → Xã Lang Thíp (04378), as the registry loads them."""
    return [
        make_unit(LEGACY_PROVINCE, level="province", parent_code=None, path=(LEGACY_PROVINCE,)),
        make_unit(
            LEGACY_DISTRICT,
            level="district",
            parent_code=LEGACY_PROVINCE,
            path=(LEGACY_PROVINCE, LEGACY_DISTRICT),
        ),
        make_unit(LEGACY_COMMUNE),
    ]


def registry_with_map() -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    uow.units.rows = {(unit.edition, unit.code): unit for unit in legacy_map()}
    return uow
