"""Activity's HTTP API: support events in, one transaction per request, answers per event.

Writes run through `write_once` so a retried request (same Idempotency-Key) gets the first
answer, and the accepted events, their outbox rows and that answer commit together.
`event_id` stays the natural key: an event sent again under any key (or none) is
recorded once and answered with `duplicate: true`. Writes need a publisher (or admin)
API key; a publisher records support only for teams in its province (any other team is
unknown to it: 404, as an id that exists nowhere), checked on the directory rows the use
case accepts against, and its key id becomes the events' `actor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.activity import domain, use_cases
from services.activity.adapters.repositories import SqlUnitOfWork
from services.activity.entrypoints.schemas import (
    ItemResult,
    SupportEventBatchIn,
    SupportEventBatchOut,
    SupportEventIn,
    SupportEventOut,
)
from shared.contracts.dates import today_in_vietnam
from shared.contracts.units import Edition
from shared.runtime.producer import ProducerContext
from shared.web.auth import PublisherDep
from shared.web.errors import DomainError
from shared.web.idempotency import IdempotencyKey
from shared.web.principal import Principal

ERROR_STATUS: dict[type[DomainError], int] = {
    domain.UnknownTeamError: 404,
    domain.TeamDissolvedError: 409,
    domain.EventIdConflictError: 409,
    domain.BatchTooLargeError: 413,
    domain.InvalidSupportEventError: 422,
    domain.EditionMismatchError: 422,
}

_support_event = TypeAdapter(SupportEventIn)


# What the lifespan (shared.runtime.producer) keeps at app.state.activity for the routes.
ActivityContext = ProducerContext[SqlUnitOfWork]


async def activity_context(request: Request) -> ActivityContext:
    # async: a plain def dependency would cost a worker-thread hop on every request.
    context: ActivityContext = request.app.state.activity
    return context


Context = Annotated[ActivityContext, Depends(activity_context)]
QueryEdition = Annotated[
    Edition | None, Query(description="when given, a team of another edition is not known")
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        404: "the team is not (yet) in activity's team directory, or outside the key's province",
        409: "the team is dissolved, or the event_id was used for another event",
        413: f"more than {domain.MAX_BATCH_SIZE:,} events in one batch",
        422: "invalid request",
    }
    return {status: {"description": meaning[status]} for status in statuses}


def _in_scope(principal: Principal) -> Callable[[domain.TeamEntry], bool] | None:
    """A publisher sees only its province's teams; others (unknown ids) get the same 404."""
    if principal.province_code is None:
        return None
    return lambda team: principal.covers(team.edition, team.unit_path)


router = APIRouter(prefix="/v1", tags=["activity"])


@router.post(
    "/support-events",
    status_code=202,
    response_model=SupportEventOut,
    responses=_errors(404, 409, 422),
)
async def record_support_event(
    body: SupportEventIn,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: QueryEdition = None,
) -> Response:
    """Record one piece of support work; emits `support.recorded` unless it is a duplicate."""
    submission = body.submission(edition)

    async def write(uow: SqlUnitOfWork) -> tuple[int, BaseModel]:
        (outcome,) = await use_cases.record_support(
            uow,
            [submission],
            today=today_in_vietnam(),
            actor=principal.actor,
            visible=_in_scope(principal),
        )
        record = outcome.unwrap()
        return 202, SupportEventOut.of(record, duplicate=outcome.status == "duplicate")

    return await context.write_once(request, key, body, write, edition=edition, principal=principal)


@router.post(
    "/support-events:batch",
    response_model=SupportEventBatchOut,
    responses=_errors(413, 422),
)
async def record_support_batch(
    body: SupportEventBatchIn,
    request: Request,
    context: Context,
    principal: PublisherDep,
    key: IdempotencyKey = None,
    edition: QueryEdition = None,
) -> Response:
    """Record up to 1,000 events: valid new ones are kept, each item is answered by index."""
    domain.check_batch_size(len(body.events))
    results: list[ItemResult | None] = [None] * len(body.events)
    valid: list[tuple[int, domain.Submission, bool]] = []
    for index, item in enumerate(body.events):
        try:
            event = _support_event.validate_python(item)
            valid.append((index, event.submission(edition), event.event_id is not None))
        except ValidationError as error:
            results[index] = ItemResult.invalid(index, error)
        except domain.ActivityError as error:
            results[index] = ItemResult.refused(index, error)

    async def write(uow: SqlUnitOfWork) -> tuple[int, BaseModel]:
        outcomes = await use_cases.record_support(
            uow,
            [submission for _, submission, _ in valid],
            today=today_in_vietnam(),
            actor=principal.actor,
            visible=_in_scope(principal),
        )
        for (index, _, id_given), outcome in zip(valid, outcomes, strict=True):
            results[index] = ItemResult.of(index, outcome, id_given=id_given)
        answered = [result for result in results if result is not None]
        return 200, SupportEventBatchOut(
            accepted=sum(r.status == "accepted" for r in answered),
            duplicates=sum(r.status == "duplicate" for r in answered),
            rejected=sum(r.status == "rejected" for r in answered),
            results=answered,
        )

    return await context.write_once(request, key, body, write, edition=edition, principal=principal)
