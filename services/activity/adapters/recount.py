"""Activity's side of a recount (`cdtt check`, the national bench): its support events summed.

Support events summed by team, the unit path each was recorded under, category and month
(the team: its support also counts where the registry places it on the other map):
what the aggregator's support figures must agree with once the system is quiet. Read-only;
nothing here is on a request path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.activity.adapters.tables import support_events
from shared.contracts.events.activity import OUTCOME_KINDS
from shared.contracts.units import Edition


@dataclass(frozen=True)
class SupportSum:
    """The support events of one team at one unit path, category and month ("YYYY-MM")."""

    edition: Edition
    unit_path: tuple[str, ...]
    category: str
    month: str
    events: int
    residents: int
    outcomes: tuple[int, ...] = (0,) * len(OUTCOME_KINDS)  # in OUTCOME_KINDS order
    team_id: uuid.UUID | None = None


async def recount_support(conn: AsyncConnection, editions: Iterable[Edition]) -> list[SupportSum]:
    """Every support event of `editions`, summed per team, unit path, category and month."""
    month = func.to_char(support_events.c.occurred_on, "YYYY-MM").label("month")
    rows = await conn.execute(
        select(
            support_events.c.team_id,
            support_events.c.edition,
            support_events.c.unit_path,
            support_events.c.category,
            month,
            func.count().label("events"),
            func.sum(support_events.c.residents_helped).label("residents"),
            *(func.sum(support_events.c[kind]).label(kind) for kind in OUTCOME_KINDS),
        )
        .where(support_events.c.edition.in_(list(editions)))
        .group_by(
            support_events.c.team_id,
            support_events.c.edition,
            support_events.c.unit_path,
            support_events.c.category,
            month,
        )
    )
    return [
        SupportSum(
            r.edition,
            tuple(r.unit_path),
            r.category,
            r.month,
            r.events,
            r.residents,
            tuple(int(r._mapping[kind]) for kind in OUTCOME_KINDS),
            r.team_id,
        )
        for r in rows
    ]


@dataclass
class ScopeSupport:
    """Activity's figures of one scope, as /v1/coverage/{code} serves them."""

    events: int = 0
    residents: int = 0
    by_category: dict[str, int] = field(default_factory=dict)  # events
    by_month: dict[str, int] = field(default_factory=dict)  # events


_SCOPE = text("""
SELECT category, to_char(occurred_on, 'YYYY-MM') AS month, count(*) AS events,
       sum(residents_helped) AS residents
FROM activity.support_events
WHERE edition = :edition AND (:code = '' OR unit_path[:depth] = :code)
GROUP BY GROUPING SETS ((category), (month))
""")


async def recount_scope_support(
    conn: AsyncConnection, edition: Edition, code: str, depth: int
) -> ScopeSupport:
    """Support events in the subtree of `code`, the unit at `depth` of its path ("" and 0:
    the nation), by category and by month, in one scan."""
    rows = await conn.execute(_SCOPE, {"edition": edition, "code": code, "depth": depth})
    found = ScopeSupport()
    for row in rows:
        if row.category:
            found.by_category[row.category] = row.events
            found.events += row.events
            found.residents += row.residents
        else:
            found.by_month[row.month] = row.events
    return found
