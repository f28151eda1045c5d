"""Registry state in PostgreSQL: units, teams and members loaded and saved inside one transaction.

The ports of services/registry/ports.py over SQL. `unit_of_work` opens the transaction a
use case runs in; its repositories read and write through that transaction and `publish`
queues events in the same one (the outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry.adapters.tables import (
    members,
    outbox,
    team_placements,
    teams,
    unit_links,
    units,
)
from services.registry.adapters.targets import TargetRepository
from services.registry.domain import Member, Team, Unit
from services.registry.placements import Link, LinkLevel
from shared.contracts.events.registry import Placement, RegistryEvent
from shared.contracts.units import Edition, Level
from shared.messaging.outbox import add_to_outbox


def _unit(row: Row[*tuple[Any, ...]]) -> Unit:
    return Unit(
        edition=row.edition,
        code=row.code,
        name=row.name,
        level=row.level,
        kind=row.kind,
        parent_code=row.parent_code,
        path=tuple(row.path),
    )


def _unit_row(unit: Unit) -> dict[str, Any]:
    return {
        "edition": unit.edition,
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "kind": unit.kind,
        "parent_code": unit.parent_code,
        "path": list(unit.path),
    }


_UNIT_COLUMNS = (
    units.c.edition,
    units.c.code,
    units.c.name,
    units.c.level,
    units.c.kind,
    units.c.parent_code,
    units.c.path,
)


class UnitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, edition: Edition, code: str, *, lock: bool = False) -> Unit | None:
        """One unit; `lock` holds it until commit so changes under it queue up."""
        query = select(*_UNIT_COLUMNS).where(units.c.edition == edition, units.c.code == code)
        if lock:
            # NO KEY UPDATE: serialises writers of this unit without blocking FK checks.
            query = query.with_for_update(key_share=True)
        row = (await self._session.execute(query)).first()
        return None if row is None else _unit(row)

    async def children(
        self, edition: Edition, parent_code: str, level: Level | None = None
    ) -> list[Unit]:
        query = select(*_UNIT_COLUMNS).where(
            units.c.edition == edition, units.c.parent_code == parent_code
        )
        if level is not None:
            query = query.where(units.c.level == level)
        rows = await self._session.execute(query.order_by(units.c.code))
        return [_unit(row) for row in rows]

    async def at_level(self, edition: Edition, level: Level) -> list[Unit]:
        rows = await self._session.execute(
            select(*_UNIT_COLUMNS)
            .where(units.c.edition == edition, units.c.level == level)
            .order_by(units.c.code)
        )
        return [_unit(row) for row in rows]

    async def child_codes(self, edition: Edition, parent_code: str) -> list[str]:
        rows = await self._session.scalars(
            select(units.c.code).where(
                units.c.edition == edition, units.c.parent_code == parent_code
            )
        )
        return list(rows)

    async def add(self, unit: Unit) -> None:
        await self._session.execute(insert(units).values(_unit_row(unit)))

    async def add_new(self, batch: Sequence[Unit]) -> list[Unit]:
        """Insert the units not yet registered, in one batched statement; returns those."""
        if not batch:
            return []
        inserted = await self._session.scalars(
            pg_insert(units).on_conflict_do_nothing().returning(units.c.code),
            [_unit_row(unit) for unit in batch],
        )
        new_codes = set(inserted)
        return [unit for unit in batch if unit.code in new_codes]


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_new(self, links: Sequence[Link]) -> int:
        """Store the links not yet stored (batched, ON CONFLICT DO NOTHING); how many were new."""
        if not links:
            return 0
        inserted = await self._session.scalars(
            pg_insert(unit_links).on_conflict_do_nothing().returning(unit_links.c.level),
            [
                {
                    "level": link.level,
                    "legacy_code": link.legacy_code,
                    "new_code": link.new_code,
                    "partly": link.partly,
                }
                for link in links
            ],
        )
        return len(list(inserted))

    async def linked(
        self, edition: Edition, level: LinkLevel, code: str
    ) -> list[tuple[Unit, bool]]:
        """The registered units of the other edition linked to unit `code` of `edition`."""
        mine, theirs = (
            (unit_links.c.legacy_code, unit_links.c.new_code)
            if edition == "legacy"
            else (unit_links.c.new_code, unit_links.c.legacy_code)
        )
        other: Edition = "2025" if edition == "legacy" else "legacy"
        rows = await self._session.execute(
            select(*_UNIT_COLUMNS, unit_links.c.partly)
            .join(units, (units.c.edition == other) & (units.c.code == theirs))
            .where(unit_links.c.level == level, mine == code)
            .order_by(units.c.code)
        )
        return [(_unit(row), row.partly) for row in rows]


class TeamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _members(
        self, team_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[list[Member], list[Member]]]:
        """Each team's current and former members (those with a left_on), in joining order."""
        found: dict[uuid.UUID, tuple[list[Member], list[Member]]] = {
            team_id: ([], []) for team_id in team_ids
        }
        rows = await self._session.execute(
            select(
                members.c.team_id,
                members.c.member_id,
                members.c.full_name,
                members.c.role,
                members.c.phone,
                members.c.trained_on,
                members.c.joined_on,
                members.c.left_on,
            )
            .where(members.c.team_id.in_(team_ids))
            .order_by(members.c.seq)
        )
        for row in rows:
            current, former = found[row.team_id]
            (current if row.left_on is None else former).append(
                Member(
                    member_id=row.member_id,
                    full_name=row.full_name,
                    role=row.role,
                    phone=row.phone,
                    trained_on=row.trained_on,
                    joined_on=row.joined_on,
                    left_on=row.left_on,
                )
            )
        return found

    async def _load(self, where: Any, *, lock: bool = False) -> list[Team]:
        query = (
            select(teams, units.c.level, units.c.path)
            .join(units, (units.c.edition == teams.c.edition) & (units.c.code == teams.c.unit_code))
            .where(where)
            .order_by(teams.c.created_at.desc(), teams.c.team_id)
        )
        if lock:
            query = query.with_for_update(of=teams)
        rows = (await self._session.execute(query)).all()
        ids = [row.team_id for row in rows]
        by_team = await self._members(ids) if rows else {}
        placed = await self._placements(ids) if rows else {}
        return [
            Team(
                team_id=row.team_id,
                edition=row.edition,
                unit_code=row.unit_code,
                unit_level=row.level,
                unit_path=tuple(row.path),
                name=row.name,
                established_on=row.established_on,
                dissolved_on=row.dissolved_on,
                status=row.status,
                version=row.version,
                placements=tuple(placed.get(row.team_id, ())),
                members=tuple(by_team[row.team_id][0]),
                former_members=tuple(by_team[row.team_id][1]),
            )
            for row in rows
        ]

    async def _placements(self, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Placement]]:
        found: dict[uuid.UUID, list[Placement]] = {}
        rows = await self._session.execute(
            select(team_placements)
            .where(team_placements.c.team_id.in_(team_ids))
            .order_by(team_placements.c.edition)
        )
        for row in rows:
            found.setdefault(row.team_id, []).append(
                Placement(
                    edition=row.edition,
                    unit_path=tuple(row.unit_path),
                    unit_level=row.unit_level,
                    placed=row.placed,
                )
            )
        return found

    async def _save_placements(self, team_id: uuid.UUID, placements: Sequence[Placement]) -> None:
        await self._session.execute(
            delete(team_placements).where(team_placements.c.team_id == team_id)
        )
        if placements:
            await self._session.execute(
                insert(team_placements),
                [
                    {
                        "team_id": team_id,
                        "edition": p.edition,
                        "unit_path": list(p.unit_path),
                        "unit_level": p.unit_level,
                        "placed": p.placed,
                    }
                    for p in placements
                ],
            )

    async def awaiting_placement(self, edition: Edition, province_code: str) -> list[Team]:
        """Active teams counted in a province of `edition` that wait for a placement there."""
        waiting = (
            select(team_placements.c.team_id)
            .where(
                team_placements.c.edition == edition,
                team_placements.c.unit_path[1] == province_code,
                team_placements.c.placed.is_(False),
            )
            .scalar_subquery()
        )
        return await self._load(teams.c.team_id.in_(waiting) & (teams.c.status == "active"))

    async def without_placement(
        self, edition: Edition, *, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        placed = select(team_placements.c.team_id).where(
            team_placements.c.team_id == teams.c.team_id, team_placements.c.edition == edition
        )
        # Only teams whose province has a registered successor there: the others would be
        # loaded for nothing until that edition's units are loaded.
        successor = units.alias("successor")
        has_successor = (
            select(unit_links.c.new_code)
            .join(
                successor,
                (successor.c.edition == edition) & (successor.c.code == unit_links.c.new_code),
            )
            .where(unit_links.c.level == "province", unit_links.c.legacy_code == units.c.path[1])
        )
        query = (
            select(teams.c.team_id)
            .join(units, (units.c.edition == teams.c.edition) & (units.c.code == teams.c.unit_code))
            .where(teams.c.edition != edition, ~placed.exists(), has_successor.exists())
        )
        if after is not None:
            query = query.where(teams.c.team_id > after)
        return list(await self._session.scalars(query.order_by(teams.c.team_id).limit(limit)))

    async def get(self, team_id: uuid.UUID, *, lock: bool = False) -> Team | None:
        """One team with its members; `lock` holds the team row so changes apply in order."""
        found = await self._load(teams.c.team_id == team_id, lock=lock)
        return found[0] if found else None

    async def of_unit(self, edition: Edition, unit_code: str) -> list[Team]:
        """Every team a unit has had, newest first."""
        return await self._load((teams.c.edition == edition) & (teams.c.unit_code == unit_code))

    async def active_team_id(self, edition: Edition, unit_code: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._session.scalar(
            select(teams.c.team_id).where(
                teams.c.edition == edition,
                teams.c.unit_code == unit_code,
                teams.c.status == "active",
            )
        )
        return found

    async def _add_members(self, team_id: uuid.UUID, new: Sequence[Member]) -> None:
        if new:
            await self._session.execute(
                insert(members),
                [
                    {
                        "member_id": m.member_id,
                        "team_id": team_id,
                        "full_name": m.full_name,
                        "role": m.role,
                        "phone": m.phone,
                        "trained_on": m.trained_on,
                        "joined_on": m.joined_on,
                        "left_on": m.left_on,
                    }
                    for m in new
                ],
            )

    async def add(self, team: Team) -> None:
        await self._session.execute(
            insert(teams).values(
                team_id=team.team_id,
                edition=team.edition,
                unit_code=team.unit_code,
                name=team.name,
                established_on=team.established_on,
                dissolved_on=team.dissolved_on,
                status=team.status,
                version=team.version,
            )
        )
        await self._add_members(team.team_id, team.members)
        if team.placements:
            await self._save_placements(team.team_id, team.placements)

    async def save(self, before: Team, after: Team) -> None:
        """Write the difference between a loaded team and its changed state."""
        result = await self._session.execute(
            update(teams)
            .where(teams.c.team_id == after.team_id, teams.c.version == before.version)
            .values(
                name=after.name,
                established_on=after.established_on,
                dissolved_on=after.dissolved_on,
                status=after.status,
                version=after.version,
                updated_at=func.now(),
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise RuntimeError(f"team {after.team_id} changed under a lock; version mismatch")
        # Removed members keep their row, dated with left_on (the team's history).
        were_former = {m.member_id for m in before.former_members}
        for gone in after.former_members:
            if gone.member_id not in were_former:
                await self._session.execute(
                    update(members)
                    .where(members.c.member_id == gone.member_id)
                    .values(left_on=gone.left_on)
                )
        had = {m.member_id: m for m in (*before.members, *before.former_members)}
        await self._add_members(after.team_id, [m for m in after.members if m.member_id not in had])
        for member in after.members:
            earlier = had.get(member.member_id)
            if earlier is not None and earlier.trained_on != member.trained_on:
                await self._session.execute(
                    update(members)
                    .where(members.c.member_id == member.member_id)
                    .values(trained_on=member.trained_on)
                )
        if after.placements != before.placements:
            await self._save_placements(after.team_id, after.placements)


@dataclass
class SqlUnitOfWork:
    """One transaction: the repositories use it, and `publish` queues events in it."""

    session: AsyncSession

    @property
    def units(self) -> UnitRepository:
        return UnitRepository(self.session)

    @property
    def teams(self) -> TeamRepository:
        return TeamRepository(self.session)

    @property
    def links(self) -> LinkRepository:
        return LinkRepository(self.session)

    @property
    def targets(self) -> TargetRepository:
        return TargetRepository(self.session)

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        await add_to_outbox(self.session, outbox, events)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[SqlUnitOfWork]:
    """Commits when the block ends normally, rolls everything back when it raises."""
    async with sessionmaker.begin() as session:
        yield SqlUnitOfWork(session)
