"""Activity rules without I/O: which support events are accepted, how the directory moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.activity import domain
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
