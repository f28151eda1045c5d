"""Reads for GET /v1/reporting: per child unit, active teams and those that reported in a month.

A team "reported" in a month when it recorded at least one support event whose occurred_on
falls in it (team_months, kept by the one apply pass). Active teams are read from
team_states, each where it counts in the edition asked, as the figures count it: at its
own unit, or (a legacy team in 2025) where it is placed. This is a scan, not a key read,
so it serves a monthly report, not the live view.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contracts.units import Edition, UnitPath


@dataclass
class SilentTeam:
    team_id: uuid.UUID
    unit_code: str


@dataclass
class ChildReporting:
    code: str
    name: str
    level: str
    active_teams: int = 0
    reporting_teams: int = 0
    silent: list[SilentTeam] = field(default_factory=list)


# Every active team of the edition at the path where it counts there: its own unit, or its
# placement (team_states.placements, JSON) for a team of the other edition; a team awaiting
# a placement, or a legacy district team, counts at its 2025 province's path alone.
_COUNTED = """
WITH counted AS (
  SELECT t.team_id, t.unit_path FROM aggregator.team_states t
  WHERE t.edition = :edition AND t.status = 'active' AND t.version > 0
  UNION ALL
  SELECT t.team_id, ARRAY(SELECT jsonb_array_elements_text(p -> 'path'))
  FROM aggregator.team_states t CROSS JOIN LATERAL jsonb_array_elements(t.placements::jsonb) p
  WHERE t.edition <> :edition AND t.status = 'active' AND t.version > 0
    AND t.placements <> '[]' AND p ->> 'edition' = :edition
)
"""

# Array positions are 1-based: the child sits at position len(parent path) + 1.
_COUNTS = text(
    _COUNTED
    + """
SELECT u.code, u.name, u.level, count(t.team_id) AS active, count(m.team_id) AS reporting
FROM aggregator.units u
LEFT JOIN counted t ON t.unit_path[1:(:depth)] = u.path
LEFT JOIN aggregator.team_months m ON m.team_id = t.team_id AND m.month = :month
WHERE u.edition = :edition AND u.parent_code IS NOT DISTINCT FROM :parent
GROUP BY u.code, u.name, u.level
ORDER BY u.code
"""
)

_SILENT = text(
    _COUNTED  # noqa: S608 - two constant texts joined; every value is a bound parameter
    + """
SELECT t.team_id, t.unit_path[1:(:depth)] AS child,
       t.unit_path[array_length(t.unit_path, 1)] AS unit
FROM counted t
WHERE t.unit_path[1:(:depth - 1)] = CAST(:parent_path AS text[])
  AND NOT EXISTS (
    SELECT 1 FROM aggregator.team_months m WHERE m.team_id = t.team_id AND m.month = :month)
ORDER BY t.unit_path, t.team_id
"""
)


async def read_reporting(
    conn: AsyncConnection,
    edition: Edition,
    parent_path: UnitPath,
    month: str,
    *,
    with_silent: bool,
) -> list[ChildReporting]:
    """One row per unit under the parent (`()`: the provinces), by code."""
    depth = len(parent_path) + 1
    parent = parent_path[-1] if parent_path else None
    rows = await conn.execute(
        _COUNTS, {"edition": edition, "parent": parent, "month": month, "depth": depth}
    )
    children = {
        r.code: ChildReporting(r.code, r.name, r.level, r.active, r.reporting) for r in rows
    }
    if with_silent and children:
        silent = await conn.execute(
            _SILENT,
            {
                "edition": edition,
                "depth": depth,
                "parent_path": list(parent_path),
                "month": month,
            },
        )
        for row in silent:
            child = children.get(row.child[-1])
            if child is not None:
                child.silent.append(SilentTeam(row.team_id, row.unit))
    return list(children.values())
