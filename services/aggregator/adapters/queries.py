"""Reads of the projections for the HTTP API and the live feed: key reads, never a recount."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.aggregator.adapters.tables import (
    figures,
    figures_by_day,
    support_by_category,
    support_by_day,
    support_by_month,
    targets,
    units,
)
from services.aggregator.domain import (
    COUNTERS,
    HISTORY_COUNTERS,
    NATIONAL,
    NATIONAL_NAME,
    SUPPORT_COUNTERS,
    FigureDelta,
    FigureKey,
    SupportDelta,
    TargetRecord,
    UnitFigures,
    month_of,
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


async def _with_targets(conn: AsyncConnection, found: list[UnitFigures]) -> list[UnitFigures]:
    """Attach each unit's target (the current one, also to figures read `as_of` a day: the
    registry keeps no history of targets), one key read per chunk."""
    by_key = {f.key: f for f in found}
    for chunk in _chunks(by_key.keys()):
        for row in await conn.execute(
            select(targets).where(tuple_(targets.c.edition, targets.c.code).in_(chunk))
        ):
            by_key[FigureKey(row.edition, row.code)].target = TargetRecord(
                edition=row.edition,
                code=row.code,
                version=row.version,
                due=row.due,
                covered_pct=row.covered_pct,
                members_trained_pct=row.members_trained_pct,
                outcomes=row.outcomes,
            )
    return found


# FigureDelta's support counters, in SUPPORT_COUNTERS order.
_SUPPORT_FIGURES = (
    "support_events",
    "support_residents",
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)


async def _as_of(conn: AsyncConnection, found: list[UnitFigures], day: date) -> list[UnitFigures]:
    """The figures at the end of `day` by business dates: every dated counter and the
    support splits summed from the history up to that day; totals stay today's map."""
    by_key = {f.key: f for f in found}
    for target in found:
        for name in (*HISTORY_COUNTERS, *_SUPPORT_FIGURES):
            setattr(target.counters, name, 0)
        target.by_category, target.by_month = {}, {}
    for chunk in _chunks(by_key.keys()):
        dated = await conn.execute(
            select(
                figures_by_day.c.edition,
                figures_by_day.c.code,
                *(func.sum(figures_by_day.c[name]).label(name) for name in HISTORY_COUNTERS),
            )
            .where(
                tuple_(figures_by_day.c.edition, figures_by_day.c.code).in_(chunk),
                figures_by_day.c.day <= day,
            )
            .group_by(figures_by_day.c.edition, figures_by_day.c.code)
        )
        for row in dated:
            counters = by_key[FigureKey(row.edition, row.code)].counters
            for name in HISTORY_COUNTERS:
                setattr(counters, name, int(row._mapping[name]))
        # Support: per category from the days up to `day`; per month from the month split
        # for the months before `day`'s, and the days of its month up to it.
        by_category = await conn.execute(
            select(
                support_by_day.c.edition,
                support_by_day.c.code,
                support_by_day.c.category,
                *(func.sum(support_by_day.c[name]).label(name) for name in SUPPORT_COUNTERS),
            )
            .where(
                tuple_(support_by_day.c.edition, support_by_day.c.code).in_(chunk),
                support_by_day.c.day <= day,
            )
            .group_by(support_by_day.c.edition, support_by_day.c.code, support_by_day.c.category)
        )
        for row in by_category:
            target = by_key[FigureKey(row.edition, row.code)]
            one = SupportDelta(*(int(row._mapping[name]) for name in SUPPORT_COUNTERS))
            target.by_category[row.category] = one
            for name, value in zip(_SUPPORT_FIGURES, one.as_tuple(), strict=True):
                setattr(target.counters, name, getattr(target.counters, name) + value)
        earlier = await conn.execute(
            select(
                support_by_month.c.edition,
                support_by_month.c.code,
                support_by_month.c.month,
                *(support_by_month.c[name] for name in SUPPORT_COUNTERS),
            ).where(
                tuple_(support_by_month.c.edition, support_by_month.c.code).in_(chunk),
                support_by_month.c.month < month_of(day),
            )
        )
        this_month = await conn.execute(
            select(
                support_by_day.c.edition,
                support_by_day.c.code,
                literal(month_of(day)).label("month"),
                *(func.sum(support_by_day.c[name]).label(name) for name in SUPPORT_COUNTERS),
            )
            .where(
                tuple_(support_by_day.c.edition, support_by_day.c.code).in_(chunk),
                support_by_day.c.day.between(day.replace(day=1), day),
            )
            .group_by(support_by_day.c.edition, support_by_day.c.code)
        )
        for row in [*earlier, *this_month]:
            target = by_key[FigureKey(row.edition, row.code)]
            target.by_month[row.month] = SupportDelta(
                *(int(row._mapping[name]) for name in SUPPORT_COUNTERS)
            )
    return found


async def read_figures(
    conn: AsyncConnection, keys: Collection[FigureKey], as_of: date | None = None
) -> list[UnitFigures]:
    """The figures of the given units (and national rows), those that exist, in key order;
    live, or (`as_of`) at the end of that day."""
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
    if as_of is not None:
        return await _with_targets(conn, await _as_of(conn, found, as_of))
    return await _with_targets(conn, await _with_support(conn, found))


async def read_unit(
    conn: AsyncConnection, edition: Edition, code: str, as_of: date | None = None
) -> UnitFigures | None:
    found = await read_figures(conn, [FigureKey(edition, code)], as_of)
    return found[0] if found else None


async def unit_known(conn: AsyncConnection, edition: Edition, code: str) -> bool:
    found = await conn.scalar(
        select(literal(True)).where(units.c.edition == edition, units.c.code == code)
    )
    return bool(found)


async def read_children(
    conn: AsyncConnection, edition: Edition, parent_code: str | None, as_of: date | None = None
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
    children = [_unit_figures(r) for r in rows]
    if as_of is not None:
        return await _with_targets(conn, await _as_of(conn, children, as_of))
    return await _with_targets(conn, await _with_support(conn, children))


async def read_national(
    conn: AsyncConnection, edition: Edition, as_of: date | None = None
) -> UnitFigures:
    """The edition's national row; zeros before anything of that edition was applied."""
    found = await read_figures(conn, [FigureKey(edition, NATIONAL)], as_of)
    if found:
        return found[0]
    return UnitFigures(FigureKey(edition, NATIONAL), NATIONAL_NAME, None, (), FigureDelta())


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One month of a series: the dated counters at its end, and the month's support."""

    month: str  # "YYYY-MM"
    counters: FigureDelta
    support: SupportDelta


def months_between(first: str, last: str) -> list[str]:
    """ "YYYY-MM" months from `first` to `last`, both included."""
    year, month = int(first[:4]), int(first[5:])
    months = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        months.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


async def read_series(
    conn: AsyncConnection, unit: UnitFigures, months: list[str]
) -> list[MonthFigures]:
    """`unit`'s figures at the end of each of `months` (consecutive, oldest first).

    Two index ranges on the unit's key: its dated changes summed per month (every month
    up to the last: the first month's figures include all before it), and its support by
    month. Totals stay today's map's (units carry no dates).
    """
    key = unit.key
    month = func.to_char(figures_by_day.c.day, "YYYY-MM")
    rows = await conn.execute(
        select(
            month.label("month"),
            *(func.sum(figures_by_day.c[name]).label(name) for name in HISTORY_COUNTERS),
        )
        .where(
            figures_by_day.c.edition == key.edition,
            figures_by_day.c.code == key.code,
            figures_by_day.c.day < _first_day_after(months[-1]),
        )
        .group_by(month)
        .order_by(month)
    )
    changes = {row.month: row for row in rows}
    support_rows = await conn.execute(
        select(support_by_month.c.month, *(support_by_month.c[n] for n in SUPPORT_COUNTERS)).where(
            support_by_month.c.edition == key.edition,
            support_by_month.c.code == key.code,
            support_by_month.c.month.between(months[0], months[-1]),
        )
    )
    support = {
        row.month: SupportDelta(*(row._mapping[n] for n in SUPPORT_COUNTERS))
        for row in support_rows
    }
    running = FigureDelta(
        **{name: getattr(unit.counters, name) for name in COUNTERS if name.startswith("total_")}
    )
    for earlier, row in changes.items():
        if earlier < months[0]:
            _add_dated(running, row)
    series = []
    for current in months:
        if current in changes:
            _add_dated(running, changes[current])
        counters = replace(running)
        series.append(MonthFigures(current, counters, support.get(current, SupportDelta())))
    return series


def _add_dated(counters: FigureDelta, row: Row[Any]) -> None:
    for name in HISTORY_COUNTERS:
        setattr(counters, name, getattr(counters, name) + int(row._mapping[name]))


def _first_day_after(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    return date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)


class MapPoint(NamedTuple):
    """One commune on the map: where it is, and its figures (its subtree's teams, members).

    A named tuple, not a frozen dataclass: the national map builds 3,321 of them per
    request, and a frozen dataclass's __init__ costs about twice as much (measured under
    load: ~28 vs ~13 ms for 3,321)."""

    code: str
    name: str
    lat: float
    lon: float
    province: str
    covered: bool
    teams: int
    members: int


async def read_map_points(
    conn: AsyncConnection, edition: Edition, parent_code: str | None, as_of: date | None = None
) -> list[MapPoint]:
    """Communes with a centre under `parent_code` (None: the nation), by code; live, or
    (`as_of`) at the end of that day.

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
    # Rows unpacked as tuples rather than read by name: 3,321 of them per national map.
    points = [
        MapPoint(code, name, lat, lon, path[0], (direct or 0) > 0, teams or 0, members or 0)
        for code, name, lat, lon, path, direct, teams, members in rows
    ]
    if as_of is None:
        return points
    return await _map_points_as_of(conn, edition, points, as_of)


async def _map_points_as_of(
    conn: AsyncConnection, edition: Edition, points: list[MapPoint], day: date
) -> list[MapPoint]:
    """The points with their dated figures summed from the history up to `day`."""
    dated: dict[str, tuple[int, int, int]] = {}
    codes = [p.code for p in points]
    for start in range(0, len(codes), _KEYS_PER_READ):
        rows = await conn.execute(
            select(
                figures_by_day.c.code,
                func.sum(figures_by_day.c.direct_teams).label("direct_teams"),
                func.sum(figures_by_day.c.teams).label("teams"),
                func.sum(figures_by_day.c.members).label("members"),
            )
            .where(
                figures_by_day.c.edition == edition,
                figures_by_day.c.code.in_(codes[start : start + _KEYS_PER_READ]),
                figures_by_day.c.day <= day,
            )
            .group_by(figures_by_day.c.code)
        )
        for row in rows:
            dated[row.code] = (int(row.direct_teams), int(row.teams), int(row.members))
    return [
        point._replace(
            covered=dated.get(point.code, (0, 0, 0))[0] > 0,
            teams=dated.get(point.code, (0, 0, 0))[1],
            members=dated.get(point.code, (0, 0, 0))[2],
        )
        for point in points
    ]


@dataclass(frozen=True)
class Predecessor:
    """A legacy unit a 2025 unit came from; `name` and `level` None while the legacy unit
    is not registered here."""

    code: str
    name: str | None
    level: str | None
    partly: bool


_CAME_FROM = text("""
SELECT c.code, c.partly, l.name, l.level
FROM aggregator.units u
CROSS JOIN LATERAL jsonb_to_recordset(u.came_from::jsonb) AS c(code text, partly boolean)
LEFT JOIN aggregator.units l ON l.edition = 'legacy' AND l.code = c.code
WHERE u.edition = :edition AND u.code = :code
ORDER BY c.code
""")


async def read_came_from(conn: AsyncConnection, edition: Edition, code: str) -> list[Predecessor]:
    """The legacy units a unit came from, by code (none for a legacy unit)."""
    rows = await conn.execute(_CAME_FROM, {"edition": edition, "code": code})
    return [Predecessor(r.code, r.name, r.level, r.partly) for r in rows]
