"""Registry use cases: load, decide (domain), save, queue the event, in the caller's transaction.

Each use case takes an open `UnitOfWork` (ports.py); the caller commits it, together
with anything else the request must keep (its Idempotency-Key answer), so a change and
its event are never apart. Rows that a change depends on are locked first, so concurrent writers to
one unit or one team queue up and every team event's version is exactly one higher.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from services.registry import domain, placements, targets
from services.registry.domain import (
    Member,
    Team,
    TeamNotFoundError,
    Unit,
    UnitNotFoundError,
    UnknownUnitError,
)
from services.registry.ports import UnitOfWork
from shared.contracts.dates import today_in_vietnam
from shared.contracts.events.activity import OutcomeKind
from shared.contracts.events.registry import (
    CameFrom,
    Placement,
    Role,
    TargetSet,
    TeamCreated,
    TeamDissolved,
    TeamEvent,
    TeamMembersChanged,
    TeamPlaced,
    UnitRegistered,
)
from shared.contracts.units import Edition, Level


@dataclass(frozen=True)
class NewMember:
    full_name: str
    role: Role
    phone: str | None = None
    trained_on: date | None = None
    # With the team: its established_on; added later: today.
    joined_on: date | None = None


@dataclass(frozen=True)
class RegisterVillage:
    edition: Edition
    parent_code: str
    name: str
    kind: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class RegisterTeam:
    edition: Edition
    unit_code: str
    members: Sequence[NewMember]
    name: str | None = None
    established_on: date | None = None


@dataclass(frozen=True)
class SetTarget:
    edition: Edition
    code: str
    due: date | None = None
    covered_pct: Mapping[Level, float] = field(default_factory=dict)
    members_trained_pct: float | None = None
    outcomes: Mapping[OutcomeKind, int] = field(default_factory=dict)


def unit_registered(unit: Unit, actor: str | None = None) -> UnitRegistered:
    return UnitRegistered.new(
        edition=unit.edition, unit_path=unit.path, payload=unit.state(), actor=actor
    )


def team_event(
    team: Team,
    before: Team | None,
    actor: str | None = None,
    kind: type[TeamEvent] | None = None,
) -> TeamEvent:
    """The event for a team's new state: created, dissolved, or its members changed (unless
    the caller names the `kind`, as placing does)."""
    if kind is None:
        if before is None:
            kind = TeamCreated
        elif team.status == "dissolved":
            kind = TeamDissolved
        else:
            kind = TeamMembersChanged
    return kind.new(
        edition=team.edition, unit_path=team.unit_path, payload=team.state(), actor=actor
    )


async def get_unit(uow: UnitOfWork, edition: Edition, code: str) -> Unit:
    unit = await uow.units.get(edition, code)
    if unit is None:
        raise unit_not_found(edition, code)
    return unit


def unit_not_found(edition: Edition, code: str) -> UnitNotFoundError:
    """What an unknown unit code in a URL gets, and a unit outside the caller's province."""
    return UnitNotFoundError(
        f"no unit {code} in edition {edition}", edition=edition, unit_code=code
    )


async def list_units(
    uow: UnitOfWork, edition: Edition, *, parent_code: str | None, level: Level | None
) -> list[Unit]:
    """Children of a unit (optionally of one level), or the provinces of the edition."""
    if parent_code is not None:
        await get_unit(uow, edition, parent_code)
        return await uow.units.children(edition, parent_code, level)
    if level != "province":
        raise domain.WrongLevelError(
            "name a parent (?parent=CODE), or ask for the top with ?level=province", level=level
        )
    return await uow.units.at_level(edition, "province")


async def _named_unit(
    uow: UnitOfWork, edition: Edition, code: str, *, field: Literal["parent_code", "unit_code"]
) -> Unit:
    """The unit a request body names in `field`, locked until commit so writers under it queue.

    Unknown, it is the request that is wrong (422 `unknown_unit`), not the URL (404).
    """
    unit = await uow.units.get(edition, code, lock=True)
    if unit is None:
        what = "parent unit" if field == "parent_code" else "unit"
        raise UnknownUnitError(
            f"{what} {code} is not registered in edition {edition}",
            edition=edition,
            **{field: code},
        )
    return unit


async def register_village(
    uow: UnitOfWork, command: RegisterVillage, actor: str | None = None
) -> Unit:
    # Locking the commune serialises village numbering under it.
    parent = await _named_unit(uow, command.edition, command.parent_code, field="parent_code")
    village = domain.new_village(
        parent,
        name=command.name,
        kind=command.kind,
        code=command.code,
        existing_codes=await uow.units.child_codes(parent.edition, parent.code),
    )
    await uow.units.add(village)
    await uow.publish([unit_registered(village, actor)])
    return village


async def register_units(uow: UnitOfWork, batch: Sequence[Unit]) -> list[Unit]:
    """Official units not yet registered, added with one `unit.registered` each; others skipped.

    Parents come before their children in `batch` (the foreign key checks it).
    """
    new_units = await uow.units.add_new(batch)
    await uow.publish([unit_registered(unit) for unit in new_units])
    return new_units


async def register_team(
    uow: UnitOfWork, command: RegisterTeam, *, today: date, actor: str | None = None
) -> Team:
    # Locking the unit serialises team creation on it: the second request sees the first team.
    unit = await _named_unit(uow, command.edition, command.unit_code, field="unit_code")
    team = domain.new_team(
        unit,
        members=[
            domain.new_member(
                m.full_name,
                m.role,
                m.phone,
                trained_on=m.trained_on,
                today=today,
                joined_on=m.joined_on,
            )
            for m in command.members
        ],
        active_team_id=await uow.teams.active_team_id(unit.edition, unit.code),
        name=command.name,
        established_on=command.established_on,
        today=today,
    )
    placement = await _placement_in_2025(uow, unit, actor)
    if placement is not None:
        team = replace(team, placements=(placement,))
    await uow.teams.add(team)
    await uow.publish([team_event(team, None, actor)])
    return team


async def _placement_in_2025(uow: UnitOfWork, unit: Unit, actor: str | None) -> Placement | None:
    """Where a team on legacy `unit` counts on the 2025 map (see placements.placement_in_2025).

    A legacy village goes onto the 2025 map under its commune's single successor, as a
    village of the same name linked to its legacy code: registered here the first time a
    team needs it (its `unit.registered` leaves before the team's event), reused after.
    """
    if unit.edition != "legacy":
        return None
    provinces = [u for u, _ in await uow.links.linked("legacy", "province", unit.path[0])]
    commune_code = {"commune": unit.code, "village": unit.parent_code}.get(unit.level)
    communes = (
        [u for u, _ in await uow.links.linked("legacy", "commune", commune_code)]
        if commune_code is not None
        else []
    )
    placement = placements.placement_in_2025(unit, provinces=provinces, communes=communes)
    if placement is None or unit.level != "village" or not placement.placed:
        return placement
    # Locking the 2025 commune serialises village numbering and the carrying-over under it.
    commune = await _named_unit(uow, "2025", communes[0].code, field="parent_code")
    carried = await uow.links.linked("legacy", "village", unit.code)
    if carried:
        village = carried[0][0]
    else:
        village = domain.new_village(
            commune,
            name=unit.name,
            kind=unit.kind,
            code=None,
            existing_codes=await uow.units.child_codes("2025", commune.code),
        )
        village = replace(village, came_from=(CameFrom(code=unit.code),))
        await uow.units.add(village)
        await uow.links.add_new([placements.Link("village", unit.code, village.code)])
        await uow.publish([unit_registered(village, actor)])
    return Placement(edition="2025", unit_path=village.path, unit_level="village")


async def place_backlog_team(
    uow: UnitOfWork, team_id: uuid.UUID, actor: str | None = None
) -> Team | None:
    """Give a legacy team stored without a 2025 placement the one `register_team` would give
    it now; emits `team.placed` (a new version) so the aggregator counts it on the 2025 map.

    Such teams were stored before placements existed (registry migration 0005) or before
    the 2025 units and the crosswalk were loaded. Dissolved teams are placed too: their
    history belongs on the 2025 map as well. None when there is nothing to do: the team
    has a 2025 placement already (placing again is harmless), or the 2025 map holds no
    successor of its province yet.
    """
    before = await get_team(uow, team_id, lock=True)
    if before.edition != "legacy" or before.placement_in("2025") is not None:
        return None
    unit = await get_unit(uow, before.edition, before.unit_code)
    placement = await _placement_in_2025(uow, unit, actor)
    if placement is None:
        return None
    after = replace(before, placements=(*before.placements, placement), version=before.version + 1)
    await uow.teams.save(before, after)
    await uow.publish([team_event(after, before, actor, TeamPlaced)])
    return after


async def register_links(uow: UnitOfWork, links: Sequence[placements.Link]) -> int:
    """Crosswalk rows not yet stored, added (loading is idempotent); how many were new."""
    return await uow.links.add_new(links)


async def linked_units(uow: UnitOfWork, edition: Edition, code: str) -> list[tuple[Unit, bool]]:
    """The other edition's units a unit went into (legacy) or came from (2025), with `partly`.

    A legacy village answers for the 2025 village it was carried to, a district for the
    2025 provinces its province went into (there are no districts in 2025).
    """
    unit = await get_unit(uow, edition, code)
    if unit.level == "district":
        return await uow.links.linked(edition, "province", unit.path[0])
    return await uow.links.linked(edition, unit.level, unit.code)


async def teams_awaiting_placement(
    uow: UnitOfWork, edition: Edition, province_code: str
) -> list[Team]:
    province = await get_unit(uow, edition, province_code)
    if province.level != "province":
        raise domain.WrongLevelError(
            f"teams awaiting a placement are listed per province; {province_code} is a "
            f"{province.level}",
            unit_code=province_code,
        )
    return await uow.teams.awaiting_placement(edition, province_code)


async def place_team(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    edition: Edition,
    unit_code: str,
    actor: str | None = None,
) -> Team:
    """Place a legacy team on a unit of the 2025 map (or move it there); emits `team.placed`."""
    if edition != "2025":
        raise domain.EditionMismatchError(
            f"teams are placed on the 2025 map; got edition {edition!r}", edition=edition
        )
    unit = await _named_unit(uow, edition, unit_code, field="unit_code")
    before = await get_team(uow, team_id, lock=True)
    current = before.placement_in(edition)
    provinces = {
        u.code for u, _ in await uow.links.linked("legacy", "province", before.unit_path[0])
    }
    if current is not None:
        provinces.add(current.unit_path[0])
    after = placements.place(before, unit, provinces=provinces)
    await uow.teams.save(before, after)
    await uow.publish([team_event(after, before, actor, TeamPlaced)])
    return after


async def get_team(
    uow: UnitOfWork, team_id: uuid.UUID, edition: Edition | None = None, *, lock: bool = False
) -> Team:
    """A team by id; naming an edition other than the team's finds nothing."""
    team = await uow.teams.get(team_id, lock=lock)
    if team is None or (edition is not None and team.edition != edition):
        raise team_not_found(team_id, edition)
    return team


def team_not_found(team_id: uuid.UUID, edition: Edition | None) -> TeamNotFoundError:
    """What an unknown team id gets, and a team outside the caller's province too."""
    where = "" if edition is None else f" in edition {edition}"
    return TeamNotFoundError(f"no team {team_id}{where}", team_id=team_id)


async def teams_of_unit(uow: UnitOfWork, edition: Edition, unit_code: str) -> list[Team]:
    await get_unit(uow, edition, unit_code)
    return await uow.teams.of_unit(edition, unit_code)


async def _change_team(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    edition: Edition | None,
    change: domain.TeamChange,
    actor: str | None,
) -> Team:
    before = await get_team(uow, team_id, edition, lock=True)
    after = change(before)
    if after is before:
        return before  # the change was already made: no new version, no event
    await uow.teams.save(before, after)
    await uow.publish([team_event(after, before, actor)])
    return after


async def add_team_member(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    member: NewMember,
    edition: Edition | None = None,
    actor: str | None = None,
    *,
    today: date | None = None,
) -> tuple[Team, Member]:
    today = today or today_in_vietnam()
    added = domain.new_member(
        member.full_name,
        member.role,
        member.phone,
        trained_on=member.trained_on,
        today=today,
        joined_on=member.joined_on,
    )
    team = await _change_team(
        uow, team_id, edition, lambda team: domain.add_member(team, added, today=today), actor
    )
    # The member as the team dated it (joined today unless the request said otherwise).
    added = next(m for m in team.members if m.member_id == added.member_id)
    return team, added


async def record_member_training(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    member_id: uuid.UUID,
    trained_on: date | None,
    *,
    today: date,
    edition: Edition | None = None,
    actor: str | None = None,
) -> Team:
    """Set (or clear) when a member was trained; emits `team.members_changed` if it changed."""
    return await _change_team(
        uow,
        team_id,
        edition,
        lambda team: domain.record_training(team, member_id, trained_on, today=today),
        actor,
    )


async def remove_team_member(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    member_id: uuid.UUID,
    edition: Edition | None = None,
    actor: str | None = None,
    *,
    today: date | None = None,
    left_on: date | None = None,
) -> Team:
    today = today or today_in_vietnam()
    return await _change_team(
        uow,
        team_id,
        edition,
        lambda team: domain.remove_member(team, member_id, today=today, left_on=left_on),
        actor,
    )


async def dissolve_team(
    uow: UnitOfWork,
    team_id: uuid.UUID,
    edition: Edition | None = None,
    actor: str | None = None,
    *,
    today: date | None = None,
    dissolved_on: date | None = None,
) -> Team:
    today = today or today_in_vietnam()
    return await _change_team(
        uow,
        team_id,
        edition,
        lambda team: domain.dissolve(team, today=today, dissolved_on=dissolved_on),
        actor,
    )


async def set_target(
    uow: UnitOfWork, unit: Unit, command: SetTarget, actor: str | None = None
) -> targets.Target:
    """Replace a unit's target and publish `target.set`; the same target again changes nothing.

    `unit` comes locked from the caller (`locked_unit`), so two PUTs on one unit take
    versions one after the other.
    """
    current = await uow.targets.get(unit.edition, unit.code)
    target = targets.set_target(
        unit,
        current,
        due=command.due,
        covered_pct=command.covered_pct,
        members_trained_pct=command.members_trained_pct,
        outcomes=command.outcomes,
    )
    if current is not None and replace(target, version=current.version) == current:
        return current  # a retried PUT: no new version, no event
    await uow.targets.save(target)
    await uow.publish(
        [
            TargetSet.new(
                edition=unit.edition, unit_path=unit.path, payload=target.state(), actor=actor
            )
        ]
    )
    return target


async def locked_unit(uow: UnitOfWork, edition: Edition, code: str) -> Unit:
    """A unit named in the URL, locked until commit (404 when unknown)."""
    unit = await uow.units.get(edition, code, lock=True)
    if unit is None:
        raise unit_not_found(edition, code)
    return unit


async def list_targets(
    uow: UnitOfWork, edition: Edition, parent_code: str | None
) -> list[targets.Target]:
    """Targets of a unit's children (None: of the provinces), by code."""
    if parent_code is not None:
        await get_unit(uow, edition, parent_code)
    return await uow.targets.under(edition, parent_code)
