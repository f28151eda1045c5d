"""The 2025 reform's rules: the crosswalk between the maps and where a legacy team counts in 2025.

Pure like domain.py: use cases load the successors and units, these functions decide the
team's placement, and the placement travels in every team event (TeamState.placements).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from services.registry.domain import (
    EditionMismatchError,
    OutsideProvinceError,
    Team,
    Unit,
    WrongLevelError,
)
from shared.contracts.events.registry import CameFrom, Placement

# The reform's crosswalk: which units of one edition went into which of the other.
LinkLevel = Literal["province", "commune", "village"]


@dataclass(frozen=True)
class Link:
    """One row of the crosswalk: a legacy unit went (wholly, or `partly`) into a 2025 unit.

    Province and commune links come from the official table; village links are made when a
    legacy village is carried onto the 2025 map under its commune's successor.
    """

    level: LinkLevel
    legacy_code: str
    new_code: str
    partly: bool = False


def placement_in_2025(
    unit: Unit, *, provinces: Sequence[Unit], communes: Sequence[Unit]
) -> Placement | None:
    """Where a team registered on legacy `unit` counts on the 2025 map.

    `provinces`: the 2025 successors of the unit's legacy province; `communes`: the 2025
    successors of its commune (for a commune or village team). A single successor commune
    places the team on it (a village team is placed on its village there by the caller);
    none or several leave it unplaced in its 2025 province until a publisher places it.
    None when the 2025 map has no successor province registered (nothing to count it in).
    """
    if unit.edition != "legacy":
        return None
    if unit.level in ("commune", "village") and len(communes) == 1:
        commune = communes[0]
        return Placement(edition="2025", unit_path=commune.path, unit_level="commune")
    # Where a split commune's parts went decides its province when the legacy province
    # itself was split between 2025 provinces.
    into = {c.path[0] for c in communes}
    candidates = [p for p in provinces if p.code in into] or list(provinces)
    if not candidates:
        return None
    province = candidates[0].code
    if unit.level == "province":
        return Placement(edition="2025", unit_path=(province,), unit_level="province")
    if unit.level == "district":
        # No district level any more: counts in the province's teams, covers no unit.
        return Placement(edition="2025", unit_path=(province,), unit_level=None)
    return Placement(edition="2025", unit_path=(province,), unit_level=None, placed=False)


def place(team: Team, unit: Unit, *, provinces: Iterable[str]) -> Team:
    """The legacy team placed on a 2025 commune or village of one of `provinces`.

    A successor of its commune is the expected answer; any unit of the same 2025 province
    is allowed (the event names who placed it). Placing again moves it.
    """
    team._require_active()
    if team.edition != "legacy" or unit.edition != "2025":
        raise EditionMismatchError(
            "placements put a legacy team on a unit of the 2025 map; "
            f"team is {team.edition}, unit is {unit.edition}",
            team_edition=team.edition,
            unit_edition=unit.edition,
        )
    if unit.level not in ("commune", "village"):
        raise WrongLevelError(
            f"a team is placed on a 2025 commune or village; {unit.code} is a {unit.level}",
            unit_code=unit.code,
            unit_level=unit.level,
        )
    allowed = sorted(set(provinces))
    if unit.path[0] not in allowed:
        raise OutsideProvinceError(
            f"unit {unit.code} is in 2025 province {unit.path[0]}; team {team.team_id} can be "
            f"placed in {', '.join(allowed) or 'no province (load the 2025 units)'}",
            unit_code=unit.code,
            provinces=allowed,
        )
    placed = Placement(edition="2025", unit_path=unit.path, unit_level=unit.level)
    others = tuple(p for p in team.placements if p.edition != "2025")
    return replace(team, placements=(*others, placed), version=team.version + 1)


def with_came_from(units: Sequence[Unit], links: Iterable[Link]) -> list[Unit]:
    """2025 `units` with the legacy units each came from, by the crosswalk `links`, for their
    unit.registered events (the aggregator shows a 2025 unit's predecessors from them)."""
    came_from: dict[tuple[LinkLevel, str], list[CameFrom]] = {}
    for link in sorted(links, key=lambda link: link.legacy_code):
        came_from.setdefault((link.level, link.new_code), []).append(
            CameFrom(code=link.legacy_code, partly=link.partly)
        )
    return [
        replace(unit, came_from=tuple(came_from.get((unit.level, unit.code), ())))
        if unit.edition == "2025" and unit.level in ("province", "commune", "village")
        else unit
        for unit in units
    ]
