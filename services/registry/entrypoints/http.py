"""The registry's HTTP API: translate each request into a use case call, in one transaction.

Writes run inside `run_once` so a retried request (same Idempotency-Key) gets the first
answer and the change, its event and that answer commit together. Rule violations from
the domain become JSON errors with the status each one calls for.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry import domain, use_cases
from services.registry.adapters.repositories import UnitOfWork, unit_of_work
from services.registry.adapters.tables import idempotency_keys
from services.registry.entrypoints.schemas import (
    AddedMemberOut,
    AddMemberRequest,
    DissolveTeamRequest,
    RegisterTeamRequest,
    RegisterVillageRequest,
    TeamList,
    TeamOut,
    UnitList,
    UnitOut,
)
from shared.envelope import Level
from shared.http import error_body
from shared.idempotency import IdempotencyKey, request_fingerprint, run_once, stored_response
from shared.settings import Edition, Settings

ERROR_STATUS: dict[type[domain.RegistryError], int] = {
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
    domain.UnitCodeTakenError: 409,
    domain.UnitHasActiveTeamError: 409,
    domain.LeaderAlreadyPresentError: 409,
    domain.LastMemberError: 409,
    domain.TeamDissolvedError: 409,
}

Write = Callable[[UnitOfWork], Awaitable[tuple[int, BaseModel | None]]]


@dataclass(frozen=True)
class RegistryContext:
    """What the routes need, built in the lifespan (bootstrap) and kept on app.state."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]

    async def write_once(
        self, request: Request, key: str | None, body: BaseModel | None, write: Write, **params: Any
    ) -> Response:
        """Run a write and store its answer under the key, in one transaction."""
        path = request.url.path
        async with unit_of_work(self.sessionmaker) as uow:
            stored = await run_once(
                uow.session,
                idempotency_keys,
                key=key,
                method=request.method,
                path=path,
                fingerprint=request_fingerprint(request.method, path, body, **params),
                write=lambda: write(uow),
            )
        return stored_response(stored)


def registry_context(request: Request) -> RegistryContext:
    context: RegistryContext = request.app.state.registry
    return context


Context = Annotated[RegistryContext, Depends(registry_context)]
QueryEdition = Annotated[
    Edition | None, Query(description="edition of the codes in the path; default CDTT_EDITION")
]
TeamQueryEdition = Annotated[
    Edition | None, Query(description="when given, a team of another edition is not found")
]


def install_registry_errors(app: FastAPI) -> None:
    @app.exception_handler(domain.RegistryError)
    async def on_registry_error(_: Request, error: domain.RegistryError) -> JSONResponse:
        body = error_body(error.code, error.message, **error.details)
        return JSONResponse(jsonable_encoder(body), ERROR_STATUS.get(type(error), 422))


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        404: "not found",
        409: "conflicts with the current state",
        422: "invalid request",
    }
    return {status: {"description": meaning[status]} for status in statuses}


router = APIRouter(prefix="/v1", tags=["registry"])


@router.get("/units/{code}", response_model=UnitOut, responses=_errors(404))
async def read_unit(code: str, context: Context, edition: QueryEdition = None) -> UnitOut:
    """One unit of an edition."""
    async with unit_of_work(context.sessionmaker) as uow:
        unit = await use_cases.get_unit(uow, edition or context.settings.edition, code)
    return UnitOut.of(unit)


@router.get("/units", response_model=UnitList, responses=_errors(404, 422))
async def list_units(
    context: Context,
    parent: Annotated[str | None, Query(description="list this unit's children")] = None,
    level: Annotated[Level | None, Query(description="only units of this level")] = None,
    edition: QueryEdition = None,
) -> UnitList:
    """Children of `parent`, or with `level=province` the provinces of the edition."""
    async with unit_of_work(context.sessionmaker) as uow:
        found = await use_cases.list_units(
            uow, edition or context.settings.edition, parent_code=parent, level=level
        )
    return UnitList(items=tuple(UnitOut.of(unit) for unit in found))


@router.post("/units", status_code=201, response_model=UnitOut, responses=_errors(409, 422))
async def register_village(
    body: RegisterVillageRequest,
    request: Request,
    context: Context,
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
        return 201, UnitOut.of(await use_cases.register_village(uow, command))

    return await context.write_once(request, key, body, write, edition=command.edition)


@router.post("/teams", status_code=201, response_model=TeamOut, responses=_errors(409, 422))
async def register_team(
    body: RegisterTeamRequest,
    request: Request,
    context: Context,
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
        team = await use_cases.register_team(uow, command, today=use_cases.today_in_vietnam())
        return 201, TeamOut.of(team)

    return await context.write_once(request, key, body, write, edition=command.edition)


@router.get("/teams/{team_id}", response_model=TeamOut, responses=_errors(404))
async def read_team(
    team_id: uuid.UUID, context: Context, edition: TeamQueryEdition = None
) -> TeamOut:
    """One team with its current members."""
    async with unit_of_work(context.sessionmaker) as uow:
        team = await use_cases.get_team(uow, team_id, edition)
    return TeamOut.of(team)


@router.get("/teams", response_model=TeamList, responses=_errors(404, 422))
async def list_teams(
    context: Context,
    unit: Annotated[str, Query(min_length=1, max_length=20, description="unit code")],
    edition: QueryEdition = None,
) -> TeamList:
    """Every team a unit has had, newest first (at most one of them active)."""
    async with unit_of_work(context.sessionmaker) as uow:
        found = await use_cases.teams_of_unit(uow, edition or context.settings.edition, unit)
    return TeamList(items=tuple(TeamOut.of(team) for team in found))


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
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Add a member (a second leader is refused); emits `team.members_changed`."""
    team_edition = domain.named_edition(edition, body.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        team, member = await use_cases.add_team_member(uow, team_id, body.command(), team_edition)
        return 201, AddedMemberOut.of_team(team, member)

    return await context.write_once(request, key, body, write, edition=team_edition)


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
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Remove a member; the leader may go, the last member may not (dissolve instead)."""

    async def write(uow: UnitOfWork) -> tuple[int, None]:
        await use_cases.remove_team_member(uow, team_id, member_id, edition)
        return 204, None

    return await context.write_once(request, key, None, write, edition=edition)


@router.post("/teams/{team_id}/dissolve", response_model=TeamOut, responses=_errors(404, 409, 422))
async def dissolve_team(
    team_id: uuid.UUID,
    request: Request,
    context: Context,
    body: DissolveTeamRequest | None = None,
    key: IdempotencyKey = None,
    edition: TeamQueryEdition = None,
) -> Response:
    """Dissolve a team: its unit is no longer covered; emits `team.dissolved`."""
    team_edition = domain.named_edition(edition, None if body is None else body.edition)

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        return 200, TeamOut.of(await use_cases.dissolve_team(uow, team_id, team_edition))

    return await context.write_once(request, key, body, write, edition=team_edition)
