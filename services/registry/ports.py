"""What the registry's use cases need from storage: units, teams and the outbox of one transaction.

The SQL adapters (adapters/repositories.py) implement these over PostgreSQL; the unit
tests implement them in memory (tests/unit/registry/fakes.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from services.registry.domain import Team, Unit
from services.registry.placements import Link, LinkLevel
from services.registry.targets import Target
from shared.contracts.events.registry import RegistryEvent
from shared.contracts.units import Edition, Level


class Units(Protocol):
    async def get(self, edition: Edition, code: str, *, lock: bool = False) -> Unit | None:
        """One unit; `lock` holds it until commit so changes under it queue up."""
        ...

    async def children(
        self, edition: Edition, parent_code: str, level: Level | None = None
    ) -> list[Unit]:
        """The units directly under a unit (optionally of one level), in code order."""
        ...

    async def at_level(self, edition: Edition, level: Level) -> list[Unit]:
        """Every unit of one level of the edition, in code order."""
        ...

    async def child_codes(self, edition: Edition, parent_code: str) -> list[str]: ...

    async def add(self, unit: Unit) -> None: ...

    async def add_new(self, batch: Sequence[Unit]) -> list[Unit]:
        """Store the units not yet registered; return those, in `batch` order."""
        ...


class Teams(Protocol):
    async def get(self, team_id: uuid.UUID, *, lock: bool = False) -> Team | None:
        """One team with its members; `lock` holds it so changes apply in version order."""
        ...

    async def of_unit(self, edition: Edition, unit_code: str) -> list[Team]:
        """Every team a unit has had, newest first."""
        ...

    async def active_team_id(self, edition: Edition, unit_code: str) -> uuid.UUID | None: ...

    async def add(self, team: Team) -> None: ...

    async def save(self, before: Team, after: Team) -> None:
        """Store `after` in place of `before` (the state that was loaded, one version lower)."""
        ...

    async def awaiting_placement(self, edition: Edition, province_code: str) -> list[Team]:
        """Active teams counted in a province of `edition` that wait for a placement there."""
        ...

    async def without_placement(
        self, edition: Edition, *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        """Ids of teams of the other edition with no placement in `edition` although their
        province has a successor registered there, by id, after `after` (a page of the
        placement backlog)."""
        ...


class Links(Protocol):
    """The reform's crosswalk (placements.Link), read in either direction."""

    async def add_new(self, links: Sequence[Link]) -> int:
        """Store the links not yet stored; how many were new."""
        ...

    async def linked(
        self, edition: Edition, level: LinkLevel, code: str
    ) -> list[tuple[Unit, bool]]:
        """The registered units of the other edition linked to `code`, with `partly`."""
        ...


class Targets(Protocol):
    async def get(self, edition: Edition, code: str) -> Target | None: ...

    async def save(self, target: Target) -> None:
        """Store the unit's target in place of any earlier one."""
        ...

    async def under(self, edition: Edition, parent_code: str | None) -> list[Target]:
        """Targets of the units directly under `parent_code` (None: the provinces), by code."""
        ...


class UnitOfWork(Protocol):
    """One transaction: the repositories read and write in it, `publish` queues events in it."""

    @property
    def units(self) -> Units: ...

    @property
    def teams(self) -> Teams: ...

    @property
    def links(self) -> Links: ...

    @property
    def targets(self) -> Targets: ...

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        """Queue events in this transaction (the outbox), so they leave only if it commits."""
        ...
