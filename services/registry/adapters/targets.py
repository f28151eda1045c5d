"""Targets in PostgreSQL: each unit's newest one, read and replaced in a use case's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.tables import targets, units
from services.registry.targets import Target
from shared.contracts.units import Edition

_COLUMNS = (
    targets.c.edition,
    targets.c.code,
    units.c.level,
    targets.c.version,
    targets.c.due,
    targets.c.covered_pct,
    targets.c.members_trained_pct,
    targets.c.outcomes,
)
_JOINED = targets.join(
    units, and_(units.c.edition == targets.c.edition, units.c.code == targets.c.code)
)


def _target(row: Row[*tuple[Any, ...]]) -> Target:
    return Target(
        edition=row.edition,
        code=row.code,
        level=row.level,
        version=row.version,
        due=row.due,
        covered_pct=row.covered_pct,
        members_trained_pct=row.members_trained_pct,
        outcomes=row.outcomes,
    )


class TargetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, edition: Edition, code: str) -> Target | None:
        row = (
            await self._session.execute(
                select(*_COLUMNS)
                .select_from(_JOINED)
                .where(targets.c.edition == edition, targets.c.code == code)
            )
        ).first()
        return None if row is None else _target(row)

    async def save(self, target: Target) -> None:
        values = {
            "edition": target.edition,
            "code": target.code,
            "version": target.version,
            "due": target.due,
            "covered_pct": dict(target.covered_pct),
            "members_trained_pct": target.members_trained_pct,
            "outcomes": dict(target.outcomes),
        }
        stmt = insert(targets).values(values)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[targets.c.edition, targets.c.code],
                set_={**{k: stmt.excluded[k] for k in values if k not in ("edition", "code")}},
            )
        )

    async def under(self, edition: Edition, parent_code: str | None) -> list[Target]:
        """Targets of the units directly under `parent_code` (None: the provinces), by code."""
        parent = (
            units.c.parent_code.is_(None)
            if parent_code is None
            else units.c.parent_code == parent_code
        )
        rows = await self._session.execute(
            select(*_COLUMNS)
            .select_from(_JOINED)
            .where(targets.c.edition == edition, parent)
            .order_by(targets.c.code)
        )
        return [_target(row) for row in rows]
