"""Activity use cases: record support events and keep the team directory, one transaction each.

Each use case takes an open unit of work (ports.py); the caller commits it together with
anything else the request keeps (its Idempotency-Key answer), so an accepted event, its
outbox row and that answer are never apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from services.activity import domain
from services.activity.domain import ActivityError, Submission, SupportRecord, TeamEntry
from services.activity.ports import UnitOfWork
from shared.contracts.events.activity import SupportRecorded

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Outcome:
    """What became of one submission: stored now, stored before, or refused and why."""

    status: Status
    event_id: uuid.UUID
    record: SupportRecord | None = None
    error: ActivityError | None = None

    def unwrap(self) -> SupportRecord:
        """The stored record, or raise the error that refused the submission."""
        if self.error is not None:
            raise self.error
        if self.record is None:
            raise RuntimeError(f"outcome {self.status} of {self.event_id} has no record")
        return self.record


def support_recorded(record: SupportRecord, actor: str | None = None) -> SupportRecorded:
    # The event carries the support event's own id, so every consumer deduplicates by it.
    return SupportRecorded.new(
        edition=record.edition,
        unit_path=record.unit_path,
        payload=record.state(),
        actor=actor,
        event_id=record.event_id,
    )


async def record_support(
    uow: UnitOfWork,
    submissions: Sequence[Submission],
    *,
    today: date,
    actor: str | None = None,
    visible: Callable[[TeamEntry], bool] | None = None,
) -> list[Outcome]:
    """Store and publish the acceptable new events; one outcome per submission, in order.

    An event_id seen before is a duplicate when its content matches (a retry: stored and
    published once) and a conflict otherwise. Duplicates are decided before the team is
    looked at, so a retry still says "duplicate" after its team was dissolved.

    `visible` is the caller's scope (a publisher's province): a team it does not cover is
    answered as unknown. It is checked on the very directory rows the events are accepted
    against, so no team can join the directory between the scope check and the use.
    """
    stored = await uow.support.get_many({s.event_id for s in submissions})
    teams = await uow.directory.get_many({s.team_id for s in submissions})
    if visible is not None:
        teams = {team_id: team for team_id, team in teams.items() if visible(team)}
    outcomes: list[Outcome] = []
    new: dict[uuid.UUID, SupportRecord] = {}
    for submission in submissions:
        earlier = stored.get(submission.event_id) or new.get(submission.event_id)
        if earlier is not None:
            outcomes.append(_repeat(submission, earlier))
            continue
        try:
            record = domain.accept(submission, teams.get(submission.team_id), today=today)
        except ActivityError as error:
            outcomes.append(Outcome("rejected", submission.event_id, error=error))
            continue
        new[record.event_id] = record
        outcomes.append(Outcome("accepted", record.event_id, record=record))

    added = await uow.support.add_new(list(new.values()))
    if len(added) < len(new):
        # Another request stored some of these ids between our read and our insert.
        raced = await uow.support.get_many(set(new) - added)
        outcomes = [
            _settle_race(outcome, submissions[i], raced) for i, outcome in enumerate(outcomes)
        ]
    await uow.publish(
        [support_recorded(new[event_id], actor) for event_id in new if event_id in added]
    )
    return outcomes


def _repeat(submission: Submission, earlier: SupportRecord) -> Outcome:
    if earlier.same_content(submission):
        return Outcome("duplicate", earlier.event_id, record=earlier)
    error = domain.EventIdConflictError(
        f"event_id {submission.event_id} was already recorded with other content. Event ids "
        "must be random (UUIDv4 or UUIDv7), never derived from what the event is about: "
        "anyone who can guess an id can use it first. Send this event with a new random "
        "event_id",
        event_id=str(submission.event_id),
    )
    return Outcome("rejected", submission.event_id, error=error)


def _settle_race(
    outcome: Outcome, submission: Submission, raced: Mapping[uuid.UUID, SupportRecord]
) -> Outcome:
    if outcome.status != "rejected" and outcome.event_id in raced:
        return _repeat(submission, raced[outcome.event_id])
    return outcome


async def update_directory(uow: UnitOfWork, entries: Sequence[TeamEntry]) -> int:
    """Keep the newest state of each team; older or repeated versions change nothing."""
    return await uow.directory.keep_newest(domain.newest_per_team(entries))
