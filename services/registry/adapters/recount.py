"""The registry's side of a recount (`cdtt check`, the national bench): units and active teams.

What the aggregator's figures must agree with once the system is quiet: every unit (the
denominators) and every active team with its member count, or the same counted for one
scope. Read-only; nothing here is on a request path.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.registry.adapters.tables import members, team_placements, teams, unit_links, units
from shared.contracts.units import Edition


@dataclass(frozen=True)
class RecountedUnit:
    edition: Edition
    code: str
    level: str
    path: tuple[str, ...]  # province first, the unit itself last


@dataclass(frozen=True)
class RecountedTeam:
    """An active team where it counts: its own unit, or its placement on the other map."""

    edition: Edition
    level: str | None  # of the unit it covers; None: counted in the province, covers none
    path: tuple[str, ...]
    members: int
    trained: int = 0  # members with a trained_on
    placed: bool = True  # False: waits for a placement in the province `path` names
    home: bool = True  # False: counted here through a placement, not registered here


@dataclass(frozen=True)
class RegistryRecount:
    units: list[RecountedUnit]
    active_teams: list[RecountedTeam]
    # The crosswalk's province rows (legacy code, 2025 code): what conservation groups by.
    province_links: list[tuple[str, str]] = field(default_factory=list)
    # Every team's placements in `editions` (dissolved teams too: their support stays
    # counted where they were placed): (edition, unit path) per team.
    placements: dict[uuid.UUID, list[tuple[Edition, tuple[str, ...]]]] = field(default_factory=dict)


async def recount_registry(conn: AsyncConnection, editions: Iterable[Edition]) -> RegistryRecount:
    """Every unit and every active team of `editions`."""
    chosen = list(editions)
    unit_rows = await conn.execute(
        select(units.c.edition, units.c.code, units.c.level, units.c.path).where(
            units.c.edition.in_(chosen)
        )
    )
    placed_on = and_(units.c.edition == teams.c.edition, units.c.code == teams.c.unit_code)
    team_rows = await conn.execute(
        select(
            teams.c.edition,
            units.c.level,
            units.c.path,
            func.count(members.c.member_id).label("members"),
            func.count(members.c.trained_on).label("trained"),
        )
        .select_from(
            teams.join(units, placed_on).outerjoin(
                # Former members keep their row (with left_on); only current ones count.
                members,
                and_(members.c.team_id == teams.c.team_id, members.c.left_on.is_(None)),
            )
        )
        .where(teams.c.status == "active", teams.c.edition.in_(chosen))
        .group_by(teams.c.team_id, teams.c.edition, units.c.level, units.c.path)
    )
    counted = [
        RecountedTeam(t.edition, t.level, tuple(t.path), t.members, t.trained) for t in team_rows
    ]
    # Current members only, as above: former members keep their row with a left_on.
    current = and_(members.c.team_id == teams.c.team_id, members.c.left_on.is_(None))
    member_count = select(func.count(members.c.member_id)).where(current).scalar_subquery()
    trained_count = select(func.count(members.c.trained_on)).where(current).scalar_subquery()
    placement_rows = await conn.execute(
        select(
            team_placements.c.edition,
            team_placements.c.unit_level,
            team_placements.c.unit_path,
            team_placements.c.placed,
            member_count.label("members"),
            trained_count.label("trained"),
        )
        .select_from(team_placements.join(teams, teams.c.team_id == team_placements.c.team_id))
        .where(teams.c.status == "active", team_placements.c.edition.in_(chosen))
    )
    counted += [
        RecountedTeam(
            p.edition,
            p.unit_level,
            tuple(p.unit_path),
            p.members,
            trained=p.trained,
            placed=p.placed,
            home=False,
        )
        for p in placement_rows
    ]
    placed = await conn.execute(
        select(
            team_placements.c.team_id, team_placements.c.edition, team_placements.c.unit_path
        ).where(team_placements.c.edition.in_(chosen))
    )
    placements: dict[uuid.UUID, list[tuple[Edition, tuple[str, ...]]]] = {}
    for p in placed:
        placements.setdefault(p.team_id, []).append((p.edition, tuple(p.unit_path)))
    links = await conn.execute(
        select(unit_links.c.legacy_code, unit_links.c.new_code).where(
            unit_links.c.level == "province"
        )
    )
    return RegistryRecount(
        units=[RecountedUnit(u.edition, u.code, u.level, tuple(u.path)) for u in unit_rows],
        active_teams=counted,
        province_links=[(link.legacy_code, link.new_code) for link in links],
        placements=placements,
    )


@dataclass(frozen=True)
class ScopeRecount:
    """The registry's figures of one scope, as /v1/coverage/{code} serves them."""

    teams: int
    members: int
    coverage: dict[str, dict[str, int]]  # level below the scope -> {"covered", "total"}


# A team counts at its own unit, and (a legacy team in 2025) at its placement: `code` is
# the unit it covers there, NULL when it covers none (a district team, or one awaiting a
# placement, counted in its province only).
_SCOPE = text("""
WITH scope AS (
  SELECT * FROM registry.units
  WHERE edition = :edition AND (:code = '' OR path[:depth] = :code)
),
counted AS (
  SELECT t.team_id, t.unit_code AS code FROM registry.teams t JOIN scope u ON u.code = t.unit_code
  WHERE t.edition = :edition AND t.status = 'active'
  UNION ALL
  SELECT p.team_id,
         CASE WHEN p.unit_level IS NOT NULL THEN p.unit_path[array_length(p.unit_path, 1)] END
  FROM registry.team_placements p JOIN registry.teams t ON t.team_id = p.team_id
  WHERE p.edition = :edition AND t.status = 'active'
    AND (:code = '' OR p.unit_path[:depth] = :code)
)
SELECT
  (SELECT count(*) FROM counted) AS teams,
  (SELECT count(*) FROM registry.members m JOIN counted c ON c.team_id = m.team_id
    WHERE m.left_on IS NULL) AS members,
  (SELECT json_object_agg(level, json_build_object('covered', covered, 'total', total))
   FROM (SELECT u.level, count(*) AS total, count(c.code) AS covered FROM scope u
         -- Several legacy teams may be placed on one merged commune: covered once.
         LEFT JOIN (SELECT DISTINCT code FROM counted) c ON c.code = u.code
         WHERE u.code <> :code GROUP BY u.level) AS levels)::text AS coverage
""")


async def recount_scope(
    conn: AsyncConnection, edition: Edition, code: str, depth: int
) -> ScopeRecount:
    """Teams, members and covered/total per level in the subtree of `code`, the unit at
    `depth` of its path ("" and 0: the nation), counted in one statement; in 2025 legacy
    teams count where they are placed, as the aggregator's figures count them."""
    row: Any = (
        await conn.execute(_SCOPE, {"edition": edition, "code": code, "depth": depth})
    ).one()
    return ScopeRecount(
        teams=row.teams, members=row.members, coverage=json.loads(row.coverage or "{}")
    )
