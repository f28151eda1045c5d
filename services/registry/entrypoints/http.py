"""The registry's HTTP API: translate each request into a use case call, in one transaction.

Writes run through `write_once` so a retried request (same Idempotency-Key) gets the first
answer and the change, its event and that answer commit together. Every route needs an
API key (shared.web.auth); writes check the key's province inside that transaction and
record its id as the events' `actor`, and the key id is part of the request's
fingerprint, so one key can never be answered with another key's stored response. Rule
violations from the domain become JSON errors with the status each one calls for.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.registry import domain, targets, use_cases
from services.registry.adapters.repositories import SqlUnitOfWork, unit_of_work
from services.registry.entrypoints.schemas import (
    AddedMemberOut,
    AddMemberRequest,
    DissolveTeamRequest,
    LinkedUnitList,
    LinkedUnitOut,
    MemberTrainingRequest,
    PlaceTeamRequest,
    RegisterTeamRequest,
    RegisterVillageRequest,
    SetTargetRequest,
    TargetList,
    TargetOut,
    TeamList,
    TeamOut,
    UnitList,
    UnitOut,
)
from services.registry.ports import UnitOfWork
from shared.contracts.dates import today_in_vietnam
from shared.contracts.units import Edition, Level
from shared.runtime.producer import ProducerContext
from shared.web.auth import PrincipalDep, PublisherDep
from shared.web.errors import DomainError
from shared.web.idempotency import IdempotencyKey
from shared.web.principal import Principal

ERROR_STATUS: dict[type[DomainError], int] = {
    domain.UnitNotFoundError: 404,
    domain.TeamNotFoundError: 404,
    domain.MemberNotFoundError: 404,
    domain.UnknownUnitError: 422,
    domain.WrongLevelError: 422,
    domain.InvalidUnitCodeError: 422,
    domain.NoMembersError: 422,
    domain.MoreThanOneLeaderError: 422,
    domain.EditionMismatchError: 422,
    domain.FutureDateError: 422,
    domain.OutsideProvinceError: 422,
    domain.DateBeforeEarliestError: 422,
    domain.DissolvedBeforeEstablishedError: 422,
    domain.LeftBeforeJoinedError: 422,
    domain.MemberOutsideTeamDatesError: 422,
    targets.LevelNotBelowUnitError: 422,
    domain.UnitCodeTakenError: 409,
    domain.UnitHasActiveTeamError: 409,
    domain.LeaderAlreadyPresentError: 409,
    domain.LastMemberError: 409,
    domain.TeamDissolvedError: 409,
}


# What the lifespan (shared.runtime.producer) keeps at app.state.registry for the routes.
RegistryContext = ProducerContext[SqlUnitOfWork]


def registry_context(request: Request) -> RegistryContext:
    context: RegistryContext = request.app.state.registry
    return context


Context = Annotated[RegistryContext, Depends(registry_context)]
# Codes as the units carry them: never a byte the database could refuse (NUL, ...).
CODE_PATTERN = r"^[0-9A-Za-z-]+$"
PathCode = Annotated[str, Path(min_length=1, max_length=20, pattern=CODE_PATTERN)]
QueryEdition = Annotated[
    Edition | None, Query(description="edition of the codes in the path; default CDTT_EDITION")
]
TeamQueryEdition = Annotated[
    Edition | None, Query(description="when given, a team of another edition is not found")
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        404: "not found",
        409: "conflicts with the current state",
        422: "invalid request",
    }
    return {status: {"description": meaning[status]} for status in statuses}


async def _require_write_at_unit(
    uow: UnitOfWork, principal: Principal, edition: Edition, code: str
) -> None:
    """403 when the unit is outside the key's province; an unknown unit is left to the use case."""
    unit = await uow.units.get(edition, code)
    if unit is not None:
        principal.require_write(edition, unit.path)


async def _require_read_at_unit(
    uow: UnitOfWork, principal: Principal, edition: Edition, code: str
) -> None:
    """404 when the unit is unknown or outside the key's province (as an unknown one)."""
    principal.require_read(
        edition,
        (await use_cases.get_unit(uow, edition, code)).path,
        unknown=use_cases.unit_not_found(edition, code),
    )


async def _require_write_at_team(
    uow: UnitOfWork, principal: Principal, team_id: uuid.UUID, edition: Edition | None
) -> None:
    team = await use_cases.get_team(uow, team_id, edition)
    principal.require_write(
        team.edition, team.unit_path, unknown=use_cases.team_not_found(team_id, edition)
    )


router = APIRouter(prefix="/v1", tags=["registry"])


@router.get("/units/{code}", response_model=UnitOut, responses=_errors(404))
async def read_unit(
    code: PathCode, context: Context, principal: PrincipalDep, edition: QueryEdition = None
) -> UnitOut:
    """One unit of an edition."""
    async with unit_of_work(context.sessionmaker) as uow:
        unit = await use_cases.get_unit(uow, edition or context.settings.edition, code)
    return UnitOut.of(unit)


@router.get("/units", response_model=UnitList, responses=_errors(404, 422))
async def list_units(
    context: Context,
    principal: PrincipalDep,
    parent: Annotated[
        str | None,
        Query(min_length=1, max_length=20, pattern=CODE_PATTERN, description="list its children"),
    ] = None,
    level: Annotated[Level | None, Query(description="only units of this level")] = None,
    edition: QueryEdition = None,
) -> UnitList:
    """Children of `parent`, or with `level=province` the provinces of the edition."""
    async with unit_of_work(context.sessionmaker) as uow:
        found = await use_cases.list_units(
            uow, edition or context.settings.edition, parent_code=parent, level=level
        )
    return UnitList(items=tuple(UnitOut.of(unit) for unit in found))


async def _linked(context: RegistryContext, edition: Edition, code: str) -> LinkedUnitList:
    async with unit_of_work(context.sessionmaker) as uow:
        found = await use_cases.linked_units(uow, edition, code)
    return LinkedUnitList(
        edition=edition,
        code=code,
        items=tuple(LinkedUnitOut.of_link(unit, partly) for unit, partly in found),
    )


@router.get("/units/{code}/successors", response_model=LinkedUnitList, responses=_errors(404))
async def unit_successors(
    code: PathCode, context: Context, principal: PrincipalDep, edition: QueryEdition = None
) -> LinkedUnitList:
    """The 2025 units a legacy unit went into (the official crosswalk), `partly` marked."""
    return await _linked(context, edition or "legacy", code)


@router.get("/units/{code}/predecessors", response_model=LinkedUnitList, responses=_errors(404))
async def unit_predecessors(
    code: PathCode, context: Context, principal: PrincipalDep, edition: QueryEdition = None
) -> LinkedUnitList:
    """The legacy units a 2025 unit came from (the official crosswalk), `partly` marked."""
    return await _linked(context, edition or "2025", code)


@router.post("/units", status_code=201, response_model=UnitOut, responses=_errors(409, 422))
async def register_village(
    body: RegisterVillageRequest,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: QueryEdition = None,
) -> Response:
    """Register a village under a commune; emits `unit.registered`."""
    command = use_cases.RegisterVillage(
        edition=domain.resolve_edition(edition, body.edition, context.settings.edition),
        parent_code=body.parent_code,
        name=body.name,
        kind=body.kind,
        code=body.code,
    )

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_unit(uow, principal, command.edition, command.parent_code)
        village = await use_cases.register_village(uow, command, actor=principal.actor)
        return 201, UnitOut.of(village)

    return await context.write_once(
        request, key, body, write, edition=command.edition, principal=principal
    )


@router.post("/teams", status_code=201, response_model=TeamOut, responses=_errors(409, 422))
async def register_team(
    body: RegisterTeamRequest,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: QueryEdition = None,
) -> Response:
    """Register a unit's team with its members; emits `team.created`."""
    command = use_cases.RegisterTeam(
        edition=domain.resolve_edition(edition, body.edition, context.settings.edition),
        unit_code=body.unit_code,
        members=[member.command() for member in body.members],
        name=body.name,
        established_on=body.established_on,
    )

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_unit(uow, principal, command.edition, command.unit_code)
        team = await use_cases.register_team(
            uow, command, today=today_in_vietnam(), actor=principal.actor
        )
        return 201, TeamOut.of(team)

    return await context.write_once(
        request, key, body, write, edition=command.edition, principal=principal
    )


@router.get("/teams/{team_id}", response_model=TeamOut, responses=_errors(404))
async def read_team(
    team_id: uuid.UUID, context: Context, principal: PrincipalDep, edition: TeamQueryEdition = None
) -> TeamOut:
    """One team with its current members (a key bound to a province reads only its own)."""
    async with unit_of_work(context.sessionmaker) as uow:
        team = await use_cases.get_team(uow, team_id, edition)
    principal.require_read(
        team.edition, team.unit_path, unknown=use_cases.team_not_found(team_id, edition)
    )
    return TeamOut.of(team, phones=principal.sees_phones)


@router.get("/teams", response_model=TeamList, responses=_errors(404, 422))
async def list_teams(
    context: Context,
    principal: PrincipalDep,
    unit: Annotated[
        str | None,
        Query(min_length=1, max_length=20, pattern=CODE_PATTERN, description="unit code"),
    ] = None,
    province: Annotated[
        str | None,
        Query(min_length=1, max_length=20, pattern=CODE_PATTERN, description="province code"),
    ] = None,
    placement: Annotated[
        Literal["unplaced"] | None,
        Query(description="with `province`: the active teams awaiting a placement there"),
    ] = None,
    edition: QueryEdition = None,
) -> TeamList:
    """Every team a unit has had, newest first (at most one of them active); or, with
    `province=P&placement=unplaced`, the province's teams awaiting a placement."""
    chosen = edition or context.settings.edition
    if (unit is None) == (province is None and placement is None):
        raise domain.WrongLevelError(
            "name a unit (?unit=CODE), or a province with ?province=P&placement=unplaced"
        )
    async with unit_of_work(context.sessionmaker) as uow:
        if unit is not None:
            await _require_read_at_unit(uow, principal, chosen, unit)
            found = await use_cases.teams_of_unit(uow, chosen, unit)
        else:
            if province is None or placement is None:
                raise domain.WrongLevelError(
                    "list a province's teams awaiting a placement: ?province=P&placement=unplaced"
                )
            principal.require_read(
                chosen, (province,), unknown=use_cases.unit_not_found(chosen, province)
            )
            found = await use_cases.teams_awaiting_placement(uow, chosen, province)
    return TeamList(items=tuple(TeamOut.of(team, phones=principal.sees_phones) for team in found))


@router.put("/teams/{team_id}/placement", response_model=TeamOut, responses=_errors(404, 409, 422))
async def place_team(
    team_id: uuid.UUID,
    body: PlaceTeamRequest,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
) -> Response:
    """Place a legacy team on a 2025 commune or village of its 2025 province (or move it);
    emits `team.placed`. Publishers of that 2025 province may place it."""

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_unit(uow, principal, body.edition, body.unit_code)
        team = await use_cases.place_team(
            uow, team_id, body.edition, body.unit_code, actor=principal.actor
        )
        return 200, TeamOut.of(team)

    return await context.write_once(
        request, key, body, write, edition=body.edition, principal=principal
    )


@router.post(
    "/teams/{team_id}/members",
    status_code=201,
    response_model=AddedMemberOut,
    responses=_errors(404, 409, 422),
)
async def add_member(
    team_id: uuid.UUID,
    body: AddMemberRequest,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Add a member (a second leader is refused); emits `team.members_changed`."""
    team_edition = domain.named_edition(edition, body.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_team(uow, principal, team_id, team_edition)
        team, member = await use_cases.add_team_member(
            uow,
            team_id,
            body.command(),
            team_edition,
            actor=principal.actor,
            today=today_in_vietnam(),
        )
        return 201, AddedMemberOut.of_team(team, member)

    return await context.write_once(
        request, key, body, write, edition=team_edition, principal=principal
    )


@router.patch(
    "/teams/{team_id}/members/{member_id}",
    response_model=TeamOut,
    responses=_errors(404, 409, 422),
)
async def record_member_training(
    team_id: uuid.UUID,
    member_id: uuid.UUID,
    body: MemberTrainingRequest,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Set when a member was trained (null clears it); emits `team.members_changed` if it
    changed anything."""
    team_edition = domain.named_edition(edition, body.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_team(uow, principal, team_id, team_edition)
        team = await use_cases.record_member_training(
            uow,
            team_id,
            member_id,
            body.trained_on,
            today=today_in_vietnam(),
            edition=team_edition,
            actor=principal.actor,
        )
        return 200, TeamOut.of(team)

    return await context.write_once(
        request, key, body, write, edition=team_edition, principal=principal
    )


@router.delete(
    "/teams/{team_id}/members/{member_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(404, 409),
)
async def remove_member(
    team_id: uuid.UUID,
    member_id: uuid.UUID,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
    left_on: Annotated[
        date | None, Query(description="on or after the member joined; today when omitted")
    ] = None,
) -> Response:
    """Remove a member (kept as a former member, left on `left_on`); the leader may go, the
    last member may not (dissolve instead)."""

    async def write(uow: UnitOfWork) -> tuple[int, None]:
        await _require_write_at_team(uow, principal, team_id, edition)
        await use_cases.remove_team_member(
            uow,
            team_id,
            member_id,
            edition,
            actor=principal.actor,
            today=today_in_vietnam(),
            left_on=left_on,
        )
        return 204, None

    # A given left_on joins the fingerprint: the same key with another date is a reused key
    # (and a request without one keeps the fingerprint it had before dates existed).
    return await context.write_once(
        request,
        key,
        None,
        write,
        edition=edition,
        principal=principal,
        **({} if left_on is None else {"left_on": left_on.isoformat()}),
    )


@router.post("/teams/{team_id}/dissolve", response_model=TeamOut, responses=_errors(404, 409, 422))
async def dissolve_team(
    team_id: uuid.UUID,
    request: Request,
    context: Context,
    principal: PublisherDep,
    body: DissolveTeamRequest | None = None,
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Dissolve a team: its unit is no longer covered; emits `team.dissolved`."""
    team_edition = domain.named_edition(edition, None if body is None else body.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        await _require_write_at_team(uow, principal, team_id, team_edition)
        team = await use_cases.dissolve_team(
            uow,
            team_id,
            team_edition,
            actor=principal.actor,
            today=today_in_vietnam(),
            dissolved_on=None if body is None else body.dissolved_on,
        )
        return 200, TeamOut.of(team)

    return await context.write_once(
        request, key, body, write, edition=team_edition, principal=principal
    )


@router.put("/targets/{code}", response_model=TargetOut, responses=_errors(404, 422))
async def set_target(
    code: PathCode,
    body: SetTargetRequest,
    request: Request,
    context: Context,
    principal: PrincipalDep,
    key: IdempotencyKey = None,
    edition: QueryEdition = None,
) -> Response:
    """Set (replace) a unit's target; emits `target.set`. Operator or admin keys only;
    a key bound to a province sets targets only inside it (any other unit is 404, as an
    unknown one)."""
    principal.require_role("operator", "admin", doing="set targets")
    chosen = domain.resolve_edition(edition, body.edition, context.settings.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        unit = await use_cases.locked_unit(uow, chosen, code)
        principal.require_read(chosen, unit.path, unknown=use_cases.unit_not_found(chosen, code))
        target = await use_cases.set_target(
            uow, unit, body.command(chosen, code), actor=principal.actor
        )
        return 200, TargetOut.of(target)

    return await context.write_once(request, key, body, write, edition=chosen, principal=principal)


@router.get("/targets", response_model=TargetList, responses=_errors(404))
async def list_targets(
    context: Context,
    principal: PrincipalDep,
    parent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=20,
            pattern=CODE_PATTERN,
            description="the targets of its children; without it, the provinces'",
        ),
    ] = None,
    edition: QueryEdition = None,
) -> TargetList:
    """The targets set for a unit's children (or for the provinces), by code; a key bound
    to a province sees only its own."""
    chosen = edition or context.settings.edition
    async with unit_of_work(context.sessionmaker) as uow:
        if parent is not None:
            await _require_read_at_unit(uow, principal, chosen, parent)
        found = await use_cases.list_targets(uow, chosen, parent)
    return TargetList(
        edition=chosen,
        parent=parent,
        items=tuple(
            TargetOut.of(t)
            for t in found
            if parent is not None or principal.covers(chosen, (t.code,))
        ),
    )
