"""Activity rules without I/O: which support events are accepted, how the directory moves."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.activity import domain
from shared.contracts.events import SupportRecorded, decode_event
from shared.contracts.events.activity import Outcomes
from tests.unit.activity.fakes import entry, submission

TODAY = date(2026, 11, 28)


def test_an_accepted_event_carries_its_teams_edition_and_unit_path() -> None:
    team = entry()
    sent = submission(team)

    record = domain.accept(sent, team, today=TODAY)

    assert record.event_id == sent.event_id
    assert (record.edition, record.unit_code, record.unit_path) == (
        "legacy",
        "04378-001",
        ("15", "136", "04378", "04378-001"),
    )
    assert record.state().residents_helped == 12


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"residents_helped": 0}, domain.InvalidSupportEventError),
        ({"residents_helped": 10_001}, domain.InvalidSupportEventError),
        ({"category": "gaming"}, domain.InvalidSupportEventError),
        ({"occurred_on": date(2020, 12, 31)}, domain.InvalidSupportEventError),
        ({"occurred_on": date(2026, 11, 29)}, domain.InvalidSupportEventError),
        ({"edition": "2025"}, domain.UnknownTeamError),
        ({"outcomes": Outcomes(vneid_activations=37)}, domain.InvalidSupportEventError),
        (
            {"residents_helped": 1, "outcomes": Outcomes(other_accounts=4)},
            domain.InvalidSupportEventError,
        ),
    ],
)
def test_rules_refuse(overrides: dict[str, Any], error: type[domain.ActivityError]) -> None:
    team = entry()
    with pytest.raises(error):
        domain.accept(submission(team, **overrides), team, today=TODAY)


@pytest.mark.parametrize(
    "overrides",
    [
        {"residents_helped": 1},
        {"residents_helped": 10_000},
        {"occurred_on": date(2021, 1, 1)},
        {"occurred_on": TODAY},
        {"edition": "legacy"},
        {"outcomes": Outcomes(vneid_activations=36, payment_accounts=36, other_accounts=0)},
        {"residents_helped": 1, "outcomes": Outcomes(ecommerce_accounts=3)},
    ],
)
def test_bounds_are_inclusive(overrides: dict[str, Any]) -> None:
    team = entry()
    assert domain.accept(submission(team, **overrides), team, today=TODAY)


def test_an_unknown_team_and_a_dissolved_team_are_told_apart() -> None:
    team = entry()
    with pytest.raises(domain.UnknownTeamError, match="retry shortly"):
        domain.accept(submission(team), None, today=TODAY)
    with pytest.raises(domain.TeamDissolvedError):
        domain.accept(submission(team), replace(team, status="dissolved"), today=TODAY)


def test_the_newest_version_of_each_team_is_kept_in_team_id_order() -> None:
    first, second = entry(), entry()
    kept = domain.newest_per_team(
        [replace(first, version=3), replace(second, version=1), replace(first, version=2)]
    )
    assert [(e.team_id, e.version) for e in kept] == sorted(
        [(first.team_id, 3), (second.team_id, 1)]
    )


def test_same_content_ignores_only_the_edition_named() -> None:
    team = entry()
    sent = submission(team)
    record = domain.accept(sent, team, today=TODAY)
    assert record.same_content(replace(sent, edition="legacy"))
    assert not record.same_content(replace(sent, residents_helped=13))
    assert not record.same_content(replace(sent, category="other"))


def test_batch_size_and_edition_resolution() -> None:
    domain.check_batch_size(1000)
    with pytest.raises(domain.BatchTooLargeError):
        domain.check_batch_size(1001)
    assert domain.resolve_edition(None, None) is None
    assert domain.resolve_edition("legacy", None) == "legacy"
    assert domain.resolve_edition("legacy", "legacy") == "legacy"
    with pytest.raises(domain.EditionMismatchError):
        domain.resolve_edition("2025", "legacy")


def test_outcomes_travel_in_the_event_and_tell_a_retry_from_another_event() -> None:
    team = entry()
    sent = submission(team, outcomes=Outcomes(vneid_activations=10, payment_accounts=2))

    record = domain.accept(sent, team, today=TODAY)

    assert record.state().outcomes.counts() == (10, 0, 2, 0, 0)
    assert record.same_content(sent)
    assert not record.same_content(replace(sent, outcomes=Outcomes(vneid_activations=11)))


def test_a_version_1_event_without_outcomes_still_decodes_with_zero_outcomes() -> None:
    team = entry()
    event = SupportRecorded.new(
        edition="legacy",
        unit_path=team.unit_path,
        payload=domain.accept(submission(team), team, today=TODAY).state(),
    )
    old = event.model_dump(mode="json")
    del old["payload"]["outcomes"]
    old["schema_version"] = 1

    decoded = decode_event(json.dumps(old))

    assert isinstance(decoded, SupportRecorded)
    assert decoded.schema_version == 1
    assert decoded.payload.outcomes.counts() == (0, 0, 0, 0, 0)
    assert event.schema_version == 2


def test_the_contract_itself_refuses_outcomes_beyond_residents_times_three() -> None:
    team = entry()
    state = domain.accept(submission(team), team, today=TODAY).state()
    with pytest.raises(ValueError, match="exceeds residents_helped"):
        state.model_validate(state.model_dump() | {"outcomes": {"vneid_activations": 37}})
