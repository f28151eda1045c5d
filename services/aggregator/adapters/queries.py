"""Reads of the projections for the HTTP API and the live feed: key reads, never a recount."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.aggregator.adapters.tables import (
    figures,
    support_by_category,
    support_by_month,
    units,
)
from services.aggregator.domain import (
    COUNTERS,
    NATIONAL,
    NATIONAL_NAME,
    SUPPORT_COUNTERS,
    FigureDelta,
    FigureKey,
    SupportDelta,
    UnitFigures,
)
from shared.contracts.units import Edition


@asynccontextmanager
async def snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only connection on one snapshot.

    A nation and its provinces, or a unit and its support splits, are read in several
    statements; on one snapshot they agree with each other even while batches commit.
    """
    async with engine.connect() as conn:
        yield await conn.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )


_COLUMNS = (
    figures.c.edition,
    figures.c.code,
    units.c.name,
    units.c.level,
    units.c.path,
    *(figures.c[name] for name in COUNTERS),
)


def _unit_figures(row: Row[Any]) -> UnitFigures:
    national = row.code == NATIONAL
    return UnitFigures(
        key=FigureKey(row.edition, row.code),
        name=NATIONAL_NAME if national else row.name,
        level=None if national else row.level,
        path=() if national else tuple(row.path),
        counters=FigureDelta(**{name: row._mapping[name] or 0 for name in COUNTERS}),
    )


# Keys per read: two bound parameters each, well under PostgreSQL's 32,767 per statement
# (a rebuild may announce every unit of the country at once).
_KEYS_PER_READ = 5_000


def _chunks(keys: Collection[FigureKey]) -> list[list[tuple[Edition, str]]]:
    pairs = [(k.edition, k.code) for k in sorted(keys)]
    return [pairs[i : i + _KEYS_PER_READ] for i in range(0, len(pairs), _KEYS_PER_READ)]


async def _with_support(conn: AsyncConnection, found: list[UnitFigures]) -> list[UnitFigures]:
    """Fill in the support splits of the given figures, two key reads per chunk of them."""
    if not found:
        return found
    by_key = {f.key: f for f in found}
    for table, bucket in ((support_by_category, "category"), (support_by_month, "month")):
        rows = [
            row
            for chunk in _chunks(by_key.keys())
            for row in await conn.execute(
                select(
                    table.c.edition,
                    table.c.code,
                    table.c[bucket],
                    *(table.c[name] for name in SUPPORT_COUNTERS),
                )
                .where(tuple_(table.c.edition, table.c.code).in_(chunk))
                .order_by(table.c.edition, table.c.code, table.c[bucket])
            )
        ]
        for row in rows:
            target = by_key[FigureKey(row.edition, row.code)]
            split: dict[Any, SupportDelta] = (
                target.by_category if bucket == "category" else target.by_month
            )
            split[row._mapping[bucket]] = SupportDelta(
                *(row._mapping[name] for name in SUPPORT_COUNTERS)
            )
    return found


async def read_figures(conn: AsyncConnection, keys: Collection[FigureKey]) -> list[UnitFigures]:
    """The figures of the given units (and national rows), those that exist, in key order."""
    found = []
    for chunk in _chunks(keys):
        rows = await conn.execute(
            select(*_COLUMNS)
            .select_from(
                figures.outerjoin(
                    units,
                    and_(units.c.edition == figures.c.edition, units.c.code == figures.c.code),
                )
            )
            .where(tuple_(figures.c.edition, figures.c.code).in_(chunk))
            # A unit is served once the unit itself is known (a team's events may come first).
            .where((figures.c.code == NATIONAL) | units.c.code.is_not(None))
            .order_by(figures.c.edition, figures.c.code)
        )
        found += [_unit_figures(r) for r in rows]
    return await _with_support(conn, found)


async def read_unit(conn: AsyncConnection, edition: Edition, code: str) -> UnitFigures | None:
    found = await read_figures(conn, [FigureKey(edition, code)])
    return found[0] if found else None


async def unit_known(conn: AsyncConnection, edition: Edition, code: str) -> bool:
    found = await conn.scalar(
        select(literal(True)).where(units.c.edition == edition, units.c.code == code)
    )
    return bool(found)


async def read_children(
    conn: AsyncConnection, edition: Edition, parent_code: str | None
) -> list[UnitFigures]:
    """Figures of the units directly under `parent_code` (None: the provinces), by code."""
    parent = (
        units.c.parent_code.is_(None) if parent_code is None else units.c.parent_code == parent_code
    )
    rows = await conn.execute(
        select(
            units.c.edition,
            units.c.code,
            units.c.name,
            units.c.level,
            units.c.path,
            *(figures.c[name] for name in COUNTERS),
        )
        .select_from(
            units.outerjoin(
                figures, and_(figures.c.edition == units.c.edition, figures.c.code == units.c.code)
            )
        )
        .where(units.c.edition == edition, parent)
        .order_by(units.c.code)
    )
    return await _with_support(conn, [_unit_figures(r) for r in rows])


async def read_national(conn: AsyncConnection, edition: Edition) -> UnitFigures:
    """The edition's national row; zeros before anything of that edition was applied."""
    found = await read_figures(conn, [FigureKey(edition, NATIONAL)])
    if found:
        return found[0]
    return UnitFigures(FigureKey(edition, NATIONAL), NATIONAL_NAME, None, (), FigureDelta())


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One commune on the map: where it is, and its figures (its subtree's teams, members)."""

    code: str
    name: str
    lat: float
    lon: float
    province: str
    covered: bool
    teams: int
    members: int


async def read_map_points(
    conn: AsyncConnection, edition: Edition, parent_code: str | None
) -> list[MapPoint]:
    """Communes with a centre under `parent_code` (None: the nation), by code.

    One index range per edition and a join on the figures' primary key; a parent filters
    on the path (province first), so a province or a legacy district works alike.
    """
    query = (
        select(
            units.c.code,
            units.c.name,
            units.c.lat,
            units.c.lon,
            units.c.path,
            figures.c.direct_teams,
            figures.c.teams,
            figures.c.members,
        )
        .select_from(
            units.outerjoin(
                figures, and_(figures.c.edition == units.c.edition, figures.c.code == units.c.code)
            )
        )
        .where(
            units.c.edition == edition,
            units.c.level == "commune",
            units.c.lat.is_not(None),
            units.c.lon.is_not(None),
        )
        .order_by(units.c.code)
    )
    if parent_code is not None:
        query = query.where(units.c.path.any(parent_code))
    rows = await conn.execute(query)
    return [
        MapPoint(
            code=row.code,
            name=row.name,
            lat=row.lat,
            lon=row.lon,
            province=row.path[0],
            covered=(row.direct_teams or 0) > 0,
            teams=row.teams or 0,
            members=row.members or 0,
        )
        for row in rows
    ]
