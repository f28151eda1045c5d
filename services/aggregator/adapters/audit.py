"""The aggregator's projections read whole, for audits: what `cdtt check` compares with a recount.

Every counter of every unit and nation, every support split, and the units the aggregator
knows, as plain data in the projections' own terms (`Figures`); and the support count of a
few units, for watchers that must not load the HTTP API. Read-only; not on a request path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.aggregator.adapters.tables import figures, support_by_category, support_by_month
from services.aggregator.adapters.tables import units as known_units
from services.aggregator.domain import (
    COUNTERS,
    SUPPORT_COUNTERS,
    FigureDelta,
    FigureKey,
    SupportDelta,
    SupportKey,
)
from shared.contracts.units import Edition


@dataclass
class Figures:
    """Every figure of every unit and nation, zero rows left out."""

    counters: dict[FigureKey, FigureDelta] = field(default_factory=dict)
    by_category: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    by_month: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    units: set[FigureKey] = field(default_factory=set)

    def add(self, key: FigureKey, **counts: int) -> None:
        row = self.counters.setdefault(key, FigureDelta())
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)


def add_split(split: dict[SupportKey, SupportDelta], key: SupportKey, more: SupportDelta) -> None:
    """`more` events, residents and outcomes in one support split (by category or by month)."""
    split.setdefault(key, SupportDelta()).add(more)


async def stored_figures(conn: AsyncConnection, editions: Iterable[Edition]) -> Figures:
    """The projections of `editions` as they are served."""
    chosen = list(editions)
    stored = Figures()
    rows = await conn.execute(
        select(figures.c.edition, figures.c.code, *(figures.c[name] for name in COUNTERS)).where(
            figures.c.edition.in_(chosen)
        )
    )
    for row in rows:
        stored.counters[FigureKey(row.edition, row.code)] = FigureDelta(
            **{name: row._mapping[name] for name in COUNTERS}
        )
    unit_rows = await conn.execute(
        select(known_units.c.edition, known_units.c.code).where(known_units.c.edition.in_(chosen))
    )
    stored.units = {FigureKey(u.edition, u.code) for u in unit_rows}
    for table, bucket, split in (
        (support_by_category, support_by_category.c.category, stored.by_category),
        (support_by_month, support_by_month.c.month, stored.by_month),
    ):
        splits = await conn.execute(
            select(
                table.c.edition,
                table.c.code,
                bucket.label("bucket"),
                *(table.c[name] for name in SUPPORT_COUNTERS),
            ).where(table.c.edition.in_(chosen))
        )
        for row in splits:
            key = SupportKey(row.edition, row.code, row.bucket)
            add_split(split, key, SupportDelta(*(row._mapping[n] for n in SUPPORT_COUNTERS)))
    return stored


async def support_counts(
    conn: AsyncConnection, edition: Edition, codes: Collection[str]
) -> dict[str, int]:
    """Support events counted so far for each of `codes` ("": the nation), as committed."""
    rows = await conn.execute(
        select(figures.c.code, figures.c.support_events).where(
            figures.c.edition == edition, figures.c.code.in_(list(codes))
        )
    )
    return {row.code: row.support_events for row in rows}
