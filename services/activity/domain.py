"""Activity rules: which support events are accepted, and how the team directory moves; no I/O.

Use cases load the directory entries and stored events a request touches, ask these
functions to decide, then save what was accepted and queue `support.recorded` for it.
A refused event raises an `ActivityError` subclass whose `code` and details tell the
caller what to fix; the HTTP layer maps each class to its status.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from shared.contracts.events.activity import (
    CATEGORIES,
    NO_OUTCOMES,
    OUTCOME_KINDS,
    OUTCOMES_PER_RESIDENT,
    Category,
    Outcomes,
    SupportState,
)
from shared.contracts.events.registry import TeamState, TeamStatus
from shared.contracts.units import Edition, Level, UnitPath
from shared.web.errors import DomainError

# The programme started in 2021: nothing earlier can be a team's support work.
EARLIEST_OCCURRED_ON = date(2021, 1, 1)
MIN_RESIDENTS_HELPED = 1
MAX_RESIDENTS_HELPED = 10_000
MAX_BATCH_SIZE = 1_000


class ActivityError(DomainError):
    """An event the activity service's rules refuse."""


class UnknownTeamError(ActivityError):
    code = "unknown_team"


class TeamDissolvedError(ActivityError):
    code = "team_dissolved"


class InvalidSupportEventError(ActivityError):
    code = "invalid_support_event"


class EditionMismatchError(ActivityError):
    code = "edition_mismatch"


class EventIdConflictError(ActivityError):
    """An event_id already recorded with other content: a client bug, never overwritten."""

    code = "event_id_conflict"


class BatchTooLargeError(ActivityError):
    code = "batch_too_large"


@dataclass(frozen=True)
class TeamEntry:
    """What activity knows of a team, from registry.events.v1 (the team directory)."""

    team_id: uuid.UUID
    edition: Edition
    unit_code: str
    unit_level: Level
    unit_path: UnitPath
    status: TeamStatus
    version: int

    @classmethod
    def of(cls, edition: Edition, unit_path: UnitPath, team: TeamState) -> TeamEntry:
        return cls(
            team_id=team.team_id,
            edition=edition,
            unit_code=team.unit_code,
            unit_level=team.unit_level,
            unit_path=unit_path,
            status=team.status,
            version=team.version,
        )


def newest_per_team(entries: Iterable[TeamEntry]) -> list[TeamEntry]:
    """The highest version of each team, in team_id order (writers lock rows in that order).

    Team events carry whole states, so keeping the newest makes any delivery order and
    any redelivery end in the same directory.
    """
    newest: dict[uuid.UUID, TeamEntry] = {}
    for entry in entries:
        kept = newest.get(entry.team_id)
        if kept is None or entry.version > kept.version:
            newest[entry.team_id] = entry
    return [newest[team_id] for team_id in sorted(newest)]


@dataclass(frozen=True)
class Submission:
    """One support event as a provincial system sent it (event_id generated if it gave none)."""

    event_id: uuid.UUID
    team_id: uuid.UUID
    occurred_on: date
    category: str
    residents_helped: int
    edition: Edition | None = None
    outcomes: Outcomes = NO_OUTCOMES


@dataclass(frozen=True)
class SupportRecord:
    """An accepted support event, with where its team sits so the aggregator never joins."""

    event_id: uuid.UUID
    team_id: uuid.UUID
    edition: Edition
    unit_code: str
    unit_path: UnitPath
    occurred_on: date
    category: Category
    residents_helped: int
    outcomes: Outcomes = NO_OUTCOMES

    def same_content(self, submission: Submission) -> bool:
        """Whether a resubmission under this event_id is a retry of it (not another event)."""
        return (
            submission.team_id == self.team_id
            and submission.occurred_on == self.occurred_on
            and submission.category == self.category
            and submission.residents_helped == self.residents_helped
            and submission.outcomes == self.outcomes
        )

    def state(self) -> SupportState:
        return SupportState(
            team_id=self.team_id,
            unit_code=self.unit_code,
            occurred_on=self.occurred_on,
            category=self.category,
            residents_helped=self.residents_helped,
            outcomes=self.outcomes,
        )


def accept(submission: Submission, team: TeamEntry | None, *, today: date) -> SupportRecord:
    """The record of an acceptable event; raises the first rule it breaks."""
    category = check_category(submission.category)
    check_residents_helped(submission.residents_helped)
    check_outcomes(submission.outcomes, submission.residents_helped)
    check_occurred_on(submission.occurred_on, today=today)
    if team is None or (submission.edition is not None and submission.edition != team.edition):
        where = "" if submission.edition is None else f" in edition {submission.edition}"
        raise UnknownTeamError(
            f"team {submission.team_id} is not known{where}; a team registered a moment ago "
            "reaches activity within a second, so retry shortly",
            team_id=str(submission.team_id),
        )
    if team.status != "active":
        raise TeamDissolvedError(
            f"team {team.team_id} is dissolved and records no more support",
            team_id=str(team.team_id),
        )
    return SupportRecord(
        event_id=submission.event_id,
        team_id=team.team_id,
        edition=team.edition,
        unit_code=team.unit_code,
        unit_path=team.unit_path,
        occurred_on=submission.occurred_on,
        category=category,
        residents_helped=submission.residents_helped,
        outcomes=submission.outcomes,
    )


def check_category(category: str) -> Category:
    for known in CATEGORIES:
        if category == known:
            return known
    raise InvalidSupportEventError(
        f"category must be one of {', '.join(CATEGORIES)}", field="category", value=category
    )


def check_residents_helped(count: int) -> None:
    if not MIN_RESIDENTS_HELPED <= count <= MAX_RESIDENTS_HELPED:
        raise InvalidSupportEventError(
            f"residents_helped must be {MIN_RESIDENTS_HELPED} to {MAX_RESIDENTS_HELPED:,}",
            field="residents_helped",
            value=count,
        )


def check_outcomes(outcomes: Outcomes, residents_helped: int) -> None:
    """Each kind at most residents_helped x 3: more would count accounts nobody opened."""
    limit = residents_helped * OUTCOMES_PER_RESIDENT
    for kind, count in zip(OUTCOME_KINDS, outcomes.counts(), strict=True):
        if count > limit:
            raise InvalidSupportEventError(
                f"outcomes.{kind} must be at most residents_helped x {OUTCOMES_PER_RESIDENT} "
                f"= {limit:,}",
                field=f"outcomes.{kind}",
                value=count,
            )


def check_occurred_on(day: date, *, today: date) -> None:
    if day > today:
        raise InvalidSupportEventError(
            f"occurred_on {day} is in the future (today is {today} in Vietnam)",
            field="occurred_on",
            value=day.isoformat(),
        )
    if day < EARLIEST_OCCURRED_ON:
        raise InvalidSupportEventError(
            f"occurred_on {day} is before the programme began ({EARLIEST_OCCURRED_ON})",
            field="occurred_on",
            value=day.isoformat(),
        )


def check_batch_size(size: int) -> None:
    if size > MAX_BATCH_SIZE:
        raise BatchTooLargeError(
            f"a batch holds at most {MAX_BATCH_SIZE:,} events; this one has {size:,}: split it",
            limit=MAX_BATCH_SIZE,
            size=size,
        )


def resolve_edition(query: Edition | None, body: Edition | None) -> Edition | None:
    """The edition a request names (query or body); both may be given only if they agree."""
    if query is not None and body is not None and query != body:
        raise EditionMismatchError(
            f"edition {query!r} in the query and {body!r} in the body disagree",
            query=query,
            body=body,
        )
    return body or query
