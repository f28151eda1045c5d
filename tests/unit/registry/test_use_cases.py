"""Registry use cases on the in-memory unit of work: what is stored and what enters the outbox.

A refused change must leave both untouched; the status each refusal gets over HTTP is
checked against the registry's own error table.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.registry import domain, use_cases
from services.registry.entrypoints.http import ERROR_STATUS
from services.registry.use_cases import NewMember, RegisterTeam, RegisterVillage
from shared.contracts.events.registry import (
    TeamCreated,
    TeamDissolved,
    TeamEvent,
    TeamMembersChanged,
    UnitRegistered,
)
from shared.web.errors import DomainError
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, make_unit
from tests.unit.registry.fakes import (
    FakeUnitOfWork,
    IntegrityError,
    legacy_map,
    registry_with_map,
)

TODAY = date(2026, 11, 28)
COMMUNE_PATH = (LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE)


def members(count: int = 3) -> list[NewMember]:
    """`count` members, the first of them the leader."""
    return [NewMember(f"Thành viên {n}", "leader" if n == 0 else "member") for n in range(count)]


def team_command(unit_code: str = LEGACY_COMMUNE, **overrides: Any) -> RegisterTeam:
    command = RegisterTeam(
        edition="legacy", unit_code=unit_code, members=members(), name="Tổ công nghệ số"
    )
    return replace(command, **overrides)


async def with_team(count: int = 3) -> tuple[FakeUnitOfWork, domain.Team]:
    uow = registry_with_map()
    team = await use_cases.register_team(uow, team_command(members=members(count)), today=TODAY)
    uow.published.clear()
    return uow, team


def team_events(uow: FakeUnitOfWork) -> list[TeamEvent]:
    """The team events queued, in order (a unit event among them fails the test)."""
    events = [e for e in uow.published if not isinstance(e, UnitRegistered)]
    assert len(events) == len(uow.published)
    return events


def status_of(error: DomainError) -> int:
    return ERROR_STATUS[type(error)]


class TestVillages:
    async def test_a_village_is_stored_under_its_commune_and_announced(self) -> None:
        uow = registry_with_map()

        village = await use_cases.register_village(
            uow,
            RegisterVillage(edition="legacy", parent_code=LEGACY_COMMUNE, name=" Thôn Khe Dứa "),
            actor="key-1",
        )

        assert village.code == f"{LEGACY_COMMUNE}-001"
        assert uow.units.rows[("legacy", village.code)] == village
        (event,) = uow.published
        assert isinstance(event, UnitRegistered)
        assert event.unit_path == (*COMMUNE_PATH, village.code)
        assert (event.payload.name, event.payload.kind) == ("Thôn Khe Dứa", "thôn")
        assert (event.edition, event.actor) == ("legacy", "key-1")

    async def test_numbers_continue_after_the_highest_village_of_the_commune(self) -> None:
        uow = registry_with_map()
        command = RegisterVillage(edition="legacy", parent_code=LEGACY_COMMUNE, name="Thôn A")
        await use_cases.register_village(uow, replace(command, code=f"{LEGACY_COMMUNE}-007"))

        village = await use_cases.register_village(uow, command)

        assert village.code == f"{LEGACY_COMMUNE}-008"
        assert [e.unit_path[-1] for e in uow.published] == [
            f"{LEGACY_COMMUNE}-007",
            f"{LEGACY_COMMUNE}-008",
        ]

    @pytest.mark.parametrize(
        ("command", "refusal", "status"),
        [
            (
                RegisterVillage(edition="legacy", parent_code="99999", name="Thôn A"),
                domain.UnknownUnitError,
                422,
            ),
            (
                # The commune exists in the legacy edition only.
                RegisterVillage(edition="2025", parent_code=LEGACY_COMMUNE, name="Thôn A"),
                domain.UnknownUnitError,
                422,
            ),
            (
                RegisterVillage(edition="legacy", parent_code=LEGACY_DISTRICT, name="Thôn A"),
                domain.WrongLevelError,
                422,
            ),
        ],
    )
    async def test_a_refused_village_stores_and_announces_nothing(
        self, command: RegisterVillage, refusal: type[DomainError], status: int
    ) -> None:
        uow = registry_with_map()

        with pytest.raises(refusal) as refused:
            await use_cases.register_village(uow, command)

        assert status_of(refused.value) == status
        assert refused.value.details.get("parent_code", command.parent_code) == command.parent_code
        assert len(uow.units.rows) == len(legacy_map())
        assert uow.published == []

    async def test_a_taken_code_is_409(self) -> None:
        uow = registry_with_map()
        command = RegisterVillage(
            edition="legacy",
            parent_code=LEGACY_COMMUNE,
            name="Thôn A",
            code=f"{LEGACY_COMMUNE}-003",
        )
        first = await use_cases.register_village(uow, command)

        with pytest.raises(domain.UnitCodeTakenError) as refused:
            await use_cases.register_village(uow, replace(command, name="Thôn B"))

        assert status_of(refused.value) == 409
        assert uow.units.rows[("legacy", first.code)].name == "Thôn A"
        assert len(uow.published) == 1


class TestOfficialUnits:
    async def test_only_units_not_yet_registered_are_added_and_announced(self) -> None:
        uow = FakeUnitOfWork()
        province, district, commune = legacy_map()
        await use_cases.register_units(uow, [province, district])
        uow.published.clear()

        added = await use_cases.register_units(uow, [province, district, commune])

        assert added == [commune]
        assert [(e.type, e.unit_path[-1], e.actor) for e in uow.published] == [
            ("unit.registered", LEGACY_COMMUNE, None)
        ]

    async def test_listing_without_a_parent_is_only_for_the_provinces(self) -> None:
        uow = registry_with_map()

        provinces = await use_cases.list_units(uow, "legacy", parent_code=None, level="province")
        with pytest.raises(domain.WrongLevelError) as refused:
            await use_cases.list_units(uow, "legacy", parent_code=None, level="commune")

        assert [u.code for u in provinces] == [LEGACY_PROVINCE]
        assert status_of(refused.value) == 422

    async def test_children_of_an_unknown_unit_is_404(self) -> None:
        with pytest.raises(domain.UnitNotFoundError) as refused:
            await use_cases.list_units(
                registry_with_map(), "legacy", parent_code="99999", level=None
            )
        assert status_of(refused.value) == 404


class TestRegisterTeam:
    async def test_a_team_is_stored_active_at_version_one_and_announced(self) -> None:
        uow = registry_with_map()

        team = await use_cases.register_team(
            uow, team_command(established_on=date(2022, 3, 15)), today=TODAY, actor="key-1"
        )

        assert uow.teams.rows[team.team_id] == team
        assert (team.status, team.version, len(team.members)) == ("active", 1, 3)
        (event,) = uow.published
        assert isinstance(event, TeamCreated)
        assert event.payload == team.state()
        assert event.unit_path == COMMUNE_PATH
        assert event.actor == "key-1"

    async def test_a_unit_with_an_active_team_refuses_a_second_with_409(self) -> None:
        uow, first = await with_team()

        with pytest.raises(domain.UnitHasActiveTeamError) as refused:
            await use_cases.register_team(uow, team_command(), today=TODAY)

        assert status_of(refused.value) == 409
        assert refused.value.details["team_id"] == first.team_id
        assert list(uow.teams.rows) == [first.team_id]
        assert uow.published == []

    async def test_after_dissolving_the_unit_may_get_a_new_team(self) -> None:
        uow, first = await with_team()
        await use_cases.dissolve_team(uow, first.team_id, today=TODAY)

        second = await use_cases.register_team(uow, team_command(), today=TODAY)

        teams = await use_cases.teams_of_unit(uow, "legacy", LEGACY_COMMUNE)
        assert [(t.team_id, t.status) for t in teams] == [
            (second.team_id, "active"),
            (first.team_id, "dissolved"),
        ]
        assert [type(e) for e in uow.published] == [TeamDissolved, TeamCreated]

    @pytest.mark.parametrize(
        ("overrides", "refusal"),
        [
            ({"members": []}, domain.NoMembersError),
            (
                {"members": [NewMember("A", "leader"), NewMember("B", "leader")]},
                domain.MoreThanOneLeaderError,
            ),
            ({"unit_code": "99999"}, domain.UnknownUnitError),
            ({"edition": "2025"}, domain.UnknownUnitError),
            ({"established_on": date(2026, 11, 29)}, domain.FutureDateError),
        ],
        ids=["no-members", "two-leaders", "unknown-unit", "other-edition", "future-date"],
    )
    async def test_a_refused_team_is_422_and_stores_and_announces_nothing(
        self, overrides: dict[str, Any], refusal: type[DomainError]
    ) -> None:
        uow = registry_with_map()

        with pytest.raises(refusal) as refused:
            await use_cases.register_team(uow, team_command(**overrides), today=TODAY)

        assert status_of(refused.value) == 422
        assert uow.teams.rows == {}
        assert uow.published == []

    async def test_a_team_of_another_edition_is_not_found(self) -> None:
        uow, team = await with_team()

        with pytest.raises(domain.TeamNotFoundError) as refused:
            await use_cases.get_team(uow, team.team_id, "2025")

        assert status_of(refused.value) == 404
        assert await use_cases.get_team(uow, team.team_id, "legacy") == team


class TestMembers:
    async def test_an_added_member_raises_the_version_and_announces_the_whole_team(self) -> None:
        uow, team = await with_team(count=2)

        changed, added = await use_cases.add_team_member(
            uow, team.team_id, NewMember("Hoàng Thị Thuỷ", "deputy", "0912 345 678"), today=TODAY
        )

        assert uow.teams.rows[team.team_id] == changed
        assert changed.version == 2
        assert changed.members == (*team.members, added)
        (event,) = uow.published
        assert isinstance(event, TeamMembersChanged)
        assert event.payload.version == 2
        assert [m.member_id for m in event.payload.members] == [
            m.member_id for m in changed.members
        ]

    async def test_a_second_leader_is_409_and_changes_nothing(self) -> None:
        uow, team = await with_team()

        with pytest.raises(domain.LeaderAlreadyPresentError) as refused:
            await use_cases.add_team_member(
                uow, team.team_id, NewMember("B", "leader"), today=TODAY
            )

        assert status_of(refused.value) == 409
        assert uow.teams.rows[team.team_id] == team
        assert uow.published == []

    async def test_a_removed_member_is_gone_and_announced(self) -> None:
        uow, team = await with_team(count=3)
        gone = team.members[1]

        changed = await use_cases.remove_team_member(uow, team.team_id, gone.member_id, today=TODAY)

        stored = uow.teams.rows[team.team_id]
        assert stored == changed
        assert gone not in stored.members
        assert stored.version == 2
        (event,) = uow.published
        assert isinstance(event, TeamMembersChanged)
        assert gone.member_id not in {m.member_id for m in event.payload.members}

    async def test_the_last_member_cannot_be_removed_409(self) -> None:
        uow, team = await with_team(count=2)
        first, last = team.members
        await use_cases.remove_team_member(uow, team.team_id, first.member_id, today=TODAY)

        with pytest.raises(domain.LastMemberError) as refused:
            await use_cases.remove_team_member(uow, team.team_id, last.member_id, today=TODAY)

        assert status_of(refused.value) == 409
        assert uow.teams.rows[team.team_id].members == (last,)
        assert [e.payload.version for e in team_events(uow)] == [2]

    async def test_removing_an_unknown_member_is_404(self) -> None:
        uow, team = await with_team()

        with pytest.raises(domain.MemberNotFoundError) as refused:
            await use_cases.remove_team_member(uow, team.team_id, uuid.uuid4(), today=TODAY)

        assert status_of(refused.value) == 404
        assert uow.published == []

    async def test_a_change_to_an_unknown_team_is_404(self) -> None:
        uow = registry_with_map()

        with pytest.raises(domain.TeamNotFoundError) as refused:
            await use_cases.add_team_member(
                uow, uuid.uuid4(), NewMember("A", "member"), today=TODAY
            )

        assert status_of(refused.value) == 404
        assert uow.published == []


class TestDissolve:
    async def test_a_dissolved_team_keeps_its_members_and_is_announced(self) -> None:
        uow, team = await with_team()

        dissolved = await use_cases.dissolve_team(uow, team.team_id, actor="key-2", today=TODAY)

        assert uow.teams.rows[team.team_id] == dissolved
        assert (dissolved.status, dissolved.version) == ("dissolved", 2)
        assert dissolved.members == team.members
        (event,) = uow.published
        assert isinstance(event, TeamDissolved)
        assert (event.payload.status, event.payload.version) == ("dissolved", 2)
        assert event.actor == "key-2"

    async def test_a_dissolved_team_takes_no_more_changes_409(self) -> None:
        uow, team = await with_team()
        dissolved = await use_cases.dissolve_team(uow, team.team_id, today=TODAY)
        uow.published.clear()

        changes: list[Callable[[], Awaitable[object]]] = [
            lambda: use_cases.dissolve_team(uow, team.team_id, today=TODAY),
            lambda: use_cases.add_team_member(
                uow, team.team_id, NewMember("A", "member"), today=TODAY
            ),
            lambda: use_cases.remove_team_member(
                uow, team.team_id, team.members[0].member_id, today=TODAY
            ),
        ]
        for change in changes:
            with pytest.raises(domain.TeamDissolvedError) as refused:
                await change()
            assert status_of(refused.value) == 409

        assert uow.teams.rows[team.team_id] == dissolved
        assert uow.published == []

    async def test_events_of_one_team_carry_consecutive_versions(self) -> None:
        uow, team = await with_team(count=2)
        await use_cases.add_team_member(uow, team.team_id, NewMember("C", "member"), today=TODAY)
        await use_cases.remove_team_member(
            uow, team.team_id, team.members[1].member_id, today=TODAY
        )
        await use_cases.dissolve_team(uow, team.team_id, today=TODAY)

        assert [(e.type, e.payload.version) for e in team_events(uow)] == [
            ("team.members_changed", 2),
            ("team.members_changed", 3),
            ("team.dissolved", 4),
        ]
        assert {e.payload.team_id for e in team_events(uow)} == {team.team_id}


class TestTheFake:
    """Guards the fake: it refuses what PostgreSQL refuses, so the tests above can fail."""

    async def test_a_unit_under_an_unregistered_parent(self) -> None:
        with pytest.raises(IntegrityError, match="parent"):
            await FakeUnitOfWork().units.add(make_unit("04999", parent_code="999"))

    async def test_a_second_active_team_on_a_unit(self) -> None:
        uow, team = await with_team()
        with pytest.raises(IntegrityError, match="active team"):
            await uow.teams.add(replace(team, team_id=uuid.uuid4()))

    async def test_a_save_over_a_version_that_is_not_stored(self) -> None:
        uow, team = await with_team()
        changed = domain.dissolve(team, today=TODAY)
        await uow.teams.save(team, changed)
        with pytest.raises(RuntimeError, match="version mismatch"):
            await uow.teams.save(team, changed)
