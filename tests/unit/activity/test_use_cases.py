"""Activity use cases on in-memory fakes: what is stored, published and answered per event."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

from services.activity import domain, use_cases
from services.activity.domain import Submission, TeamEntry
from services.activity.entrypoints.subscribers import directory_entries
from shared.contracts.events import (
    Event,
    TeamCreated,
    TeamDissolved,
    TeamMembersChanged,
    UnitRegistered,
)
from shared.contracts.events.registry import MemberState, TeamState, UnitState
from tests.unit.activity.fakes import FakeUnitOfWork, entry, submission

TODAY = date(2026, 11, 28)


def with_team(**overrides: Any) -> tuple[FakeUnitOfWork, TeamEntry]:
    uow = FakeUnitOfWork()
    team = entry(**overrides)
    uow.directory.rows[team.team_id] = team
    return uow, team


async def record(uow: FakeUnitOfWork, *sent: Submission) -> list[use_cases.Outcome]:
    return await use_cases.record_support(uow, list(sent), today=TODAY)


async def test_new_events_are_stored_and_published_with_their_own_event_id() -> None:
    uow, team = with_team()
    sent = submission(team)

    (outcome,) = await record(uow, sent)

    assert outcome.status == "accepted"
    assert set(uow.support.rows) == {sent.event_id}
    (event,) = uow.published
    assert event.event_id == sent.event_id
    assert event.unit_path == team.unit_path
    assert event.payload.team_id == team.team_id


async def test_a_resent_event_is_a_duplicate_and_publishes_nothing() -> None:
    uow, team = with_team()
    sent = submission(team)
    await record(uow, sent)

    (again,) = await record(uow, sent)

    assert again.status == "duplicate"
    assert again.unwrap().event_id == sent.event_id
    assert len(uow.published) == 1


async def test_a_resent_event_stays_a_duplicate_after_its_team_is_dissolved() -> None:
    uow, team = with_team()
    sent = submission(team)
    await record(uow, sent)
    uow.directory.rows[team.team_id] = replace(team, status="dissolved", version=2)

    (again,) = await record(uow, sent)

    assert again.status == "duplicate"


async def test_an_event_id_with_other_content_is_rejected_as_a_conflict() -> None:
    uow, team = with_team()
    sent = submission(team)
    await record(uow, sent)

    (clash,) = await record(uow, replace(sent, residents_helped=99))

    assert clash.status == "rejected"
    assert isinstance(clash.error, domain.EventIdConflictError)
    assert uow.support.rows[sent.event_id].residents_helped == 12


async def test_a_mixed_batch_answers_each_in_order_and_keeps_only_the_valid_new_ones() -> None:
    uow, team = with_team()
    gone = entry(status="dissolved", version=2)
    uow.directory.rows[gone.team_id] = gone
    first = submission(team)
    outcomes = await record(
        uow,
        first,
        submission(team, residents_helped=0),
        first,  # the same event twice in one batch
        replace(first, category="other"),  # its id again with other content
        submission(entry()),  # unknown team
        submission(gone),
        (second := submission(team)),
    )

    assert [o.status for o in outcomes] == [
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert [type(o.error).__name__ for o in outcomes if o.error] == [
        "InvalidSupportEventError",
        "EventIdConflictError",
        "UnknownTeamError",
        "TeamDissolvedError",
    ]
    assert set(uow.support.rows) == {first.event_id, second.event_id}
    assert [e.event_id for e in uow.published] == [first.event_id, second.event_id]


async def test_an_id_stored_by_a_concurrent_request_is_answered_as_that_request_left_it() -> None:
    uow, team = with_team()
    same, other = submission(team), submission(team)
    raced_same = domain.accept(same, team, today=TODAY)
    raced_other = replace(domain.accept(other, team, today=TODAY), residents_helped=1)
    uow.support.stored_meanwhile = [raced_same, raced_other]

    outcomes = await record(uow, same, other)

    assert [o.status for o in outcomes] == ["duplicate", "rejected"]
    assert uow.published == []


async def test_the_directory_keeps_the_newest_version_whatever_the_order() -> None:
    uow = FakeUnitOfWork()
    team = entry()
    await use_cases.update_directory(uow, [replace(team, version=3, status="dissolved")])
    changed = await use_cases.update_directory(
        uow, [replace(team, version=2), replace(team, version=1)]
    )

    assert changed == 0
    assert uow.directory.rows[team.team_id].version == 3


def test_team_events_become_directory_entries_and_unit_events_are_ignored() -> None:
    state = TeamState(
        team_id=uuid.uuid4(),
        unit_code="04378",
        unit_level="commune",
        status="active",
        version=1,
        members=(MemberState(member_id=uuid.uuid4(), full_name="Lò Thị Mai", role="leader"),),
    )
    path = ("15", "136", "04378")
    unit = UnitRegistered.new(
        edition="legacy",
        unit_path=path,
        payload=UnitState(
            code="04378", name="Xã Lang Thíp", level="commune", kind="xã", parent_code="136"
        ),
    )
    events: list[Event] = [
        unit,
        TeamCreated.new(edition="legacy", unit_path=path, payload=state),
        TeamMembersChanged.new(
            edition="legacy", unit_path=path, payload=state.model_copy(update={"version": 2})
        ),
        TeamDissolved.new(
            edition="legacy",
            unit_path=path,
            payload=state.model_copy(update={"version": 3, "status": "dissolved"}),
        ),
    ]

    entries = directory_entries(events)

    assert [(e.version, e.status, e.unit_path) for e in entries] == [
        (1, "active", path),
        (2, "active", path),
        (3, "dissolved", path),
    ]
