"""Registry rules decided without I/O: names, village codes, team membership, versions."""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from datetime import date

import pytest

from services.registry import domain
from shared.contracts.events.registry import MemberState, TeamState
from tests.factories import LEGACY_COMMUNE, make_member, make_team, make_unit

TODAY = date(2026, 1, 1)


class TestNames:
    def test_nfd_input_is_stored_in_nfc(self) -> None:
        typed = unicodedata.normalize("NFD", "Nguyễn Thị Thuỷ")
        assert typed != "Nguyễn Thị Thuỷ"
        assert domain.normalize_text(typed) == "Nguyễn Thị Thuỷ"

    def test_outer_spaces_are_trimmed_inner_text_kept(self) -> None:
        assert domain.normalize_text("  Bản  Mường Lò ") == "Bản  Mường Lò"

    def test_length_is_counted_after_nfc(self) -> None:
        nfc = "ễ" * 200
        nfd = unicodedata.normalize("NFD", nfc)
        assert len(nfd) > 200
        assert domain.normalize_text(nfd) == nfc
        with pytest.raises(ValueError, match="201 characters"):
            domain.normalize_text("ễ" * 201)

    @pytest.mark.parametrize("value", ["", "   ", "\t\n"])
    def test_blank_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="blank"):
            domain.normalize_text(value)

    def test_control_characters_are_refused(self) -> None:
        with pytest.raises(ValueError, match="control"):
            domain.normalize_text("Thôn\x00 1")

    @pytest.mark.parametrize(
        "hidden", ["\u202e", "\u200b", "\u200d", "\u2066", "\ufeff", "\u00ad", "\ud800"]
    )
    def test_format_and_surrogate_characters_are_refused(self, hidden: str) -> None:
        """A right-to-left override or a zero-width space would make one name look like another."""
        with pytest.raises(ValueError, match=r"(formatting|surrogate) characters \(U\+"):
            domain.normalize_text(f"Thôn{hidden} Khe Lóng")

    @pytest.mark.parametrize("phone", ["0912345678", "+84 912 345 678", "0912.345.678"])
    def test_phone_accepted(self, phone: str) -> None:
        assert domain.normalize_phone(phone) == phone

    @pytest.mark.parametrize(
        "phone",
        [
            "12",
            "phone",
            "0912345678901234567890",
            "09-abc-123",
            "+0 - - - - .",
            "0912 345",
            "0912 345 678 901",
        ],
    )
    def test_phone_refused(self, phone: str) -> None:
        with pytest.raises(ValueError, match="phone"):
            domain.normalize_phone(phone)


class TestVillages:
    def test_first_village_gets_001_and_the_commune_path(self) -> None:
        commune = make_unit()
        village = domain.new_village(
            commune, name="Thôn Khe Dứa", kind=None, code=None, existing_codes=[]
        )
        assert village.code == f"{LEGACY_COMMUNE}-001"
        assert village.path == (*commune.path, village.code)
        assert (village.level, village.kind, village.parent_code) == (
            "village",
            "thôn",
            LEGACY_COMMUNE,
        )

    def test_next_code_is_one_past_the_highest_so_codes_are_never_reused(self) -> None:
        existing = [f"{LEGACY_COMMUNE}-001", f"{LEGACY_COMMUNE}-007", "other-999"]
        assert domain.next_village_code(LEGACY_COMMUNE, existing) == f"{LEGACY_COMMUNE}-008"

    def test_a_given_code_must_belong_to_the_commune(self) -> None:
        with pytest.raises(domain.InvalidUnitCodeError):
            domain.new_village(
                make_unit(), name="Thôn A", kind=None, code="04270-001", existing_codes=[]
            )

    @pytest.mark.parametrize("suffix", ["1", "0001", "000", "12a", "1234567", ""])
    def test_a_given_code_is_spelled_canonically(self, suffix: str) -> None:
        with pytest.raises(domain.InvalidUnitCodeError):
            domain.new_village(
                make_unit(),
                name="Thôn A",
                kind=None,
                code=f"{LEGACY_COMMUNE}-{suffix}",
                existing_codes=[],
            )

    @pytest.mark.parametrize("suffix", ["001", "999", "1000", "999999"])
    def test_canonical_codes_are_accepted(self, suffix: str) -> None:
        code = f"{LEGACY_COMMUNE}-{suffix}"
        village = domain.new_village(
            make_unit(), name="Thôn A", kind=None, code=code, existing_codes=[]
        )
        assert village.code == code

    def test_a_taken_code_is_refused(self) -> None:
        code = f"{LEGACY_COMMUNE}-004"
        with pytest.raises(domain.UnitCodeTakenError) as refused:
            domain.new_village(
                make_unit(), name="Thôn A", kind=None, code=code, existing_codes=[code]
            )
        assert refused.value.details == {"unit_code": code}

    @pytest.mark.parametrize("level", ["province", "district", "village"])
    def test_villages_only_under_a_commune(self, level: str) -> None:
        with pytest.raises(domain.WrongLevelError, match="under a commune"):
            domain.new_village(
                make_unit(level=level), name="Thôn A", kind=None, code=None, existing_codes=[]
            )

    def test_levels_of_each_edition(self) -> None:
        assert domain.child_level("2025", "province") == "commune"
        assert domain.child_level("legacy", "province") == "district"
        assert domain.child_level("legacy", "commune") == "village"
        assert domain.child_level("2025", "village") is None

    def test_official_codes_are_zero_padded(self) -> None:
        assert domain.official_code("province", 1) == "01"
        assert domain.official_code("district", 1) == "001"
        assert domain.official_code("commune", 4378) == "04378"


class TestNewTeam:
    def test_a_new_team_is_active_at_version_one(self) -> None:
        team = make_team(members=3)
        assert (team.status, team.version, len(team.members)) == ("active", 1, 3)
        assert team.unit_path == make_unit().path

    def test_established_on_no_earlier_than_the_floor(self) -> None:
        for too_early in (date(1, 1, 1), date(2019, 12, 31)):
            with pytest.raises(domain.DateBeforeEarliestError):
                domain.new_team(
                    make_unit(),
                    members=[make_member("leader")],
                    active_team_id=None,
                    established_on=too_early,
                    today=TODAY,
                )
        team = domain.new_team(
            make_unit(),
            members=[make_member("leader")],
            active_team_id=None,
            established_on=date(2020, 1, 1),
            today=TODAY,
        )
        assert team.established_on == date(2020, 1, 1)

    def test_at_most_500_members_at_creation_and_one_at_a_time_after(self) -> None:
        with pytest.raises(domain.TooManyMembersError):
            make_team(members=domain.MAX_MEMBERS + 1)
        team = make_team(members=domain.MAX_MEMBERS - 1)
        team = domain.add_member(team, make_member(), today=TODAY)
        with pytest.raises(domain.TooManyMembersError) as refused:
            domain.add_member(team, make_member(), today=TODAY)
        assert refused.value.details == {"members": 501, "limit": 500}
        # Room again once a member leaves.
        fewer = domain.remove_member(team, team.members[-1].member_id, today=TODAY)
        assert (
            len(domain.add_member(fewer, make_member(), today=TODAY).members) == domain.MAX_MEMBERS
        )

    def test_at_least_one_member(self) -> None:
        with pytest.raises(domain.NoMembersError):
            domain.new_team(make_unit(), members=[], active_team_id=None, today=TODAY)

    def test_at_most_one_leader(self) -> None:
        leaders = [make_member("leader"), make_member("leader"), make_member("deputy")]
        with pytest.raises(domain.MoreThanOneLeaderError) as refused:
            domain.new_team(make_unit(), members=leaders, active_team_id=None, today=TODAY)
        assert refused.value.details == {"leaders": 2}

    def test_no_leader_is_allowed(self) -> None:
        team = make_team(members=2, leader=False)
        assert team.leader is None

    def test_one_active_team_per_unit_names_the_existing_team(self) -> None:
        existing = uuid.uuid4()
        with pytest.raises(domain.UnitHasActiveTeamError) as refused:
            domain.new_team(
                make_unit(), members=[make_member()], active_team_id=existing, today=TODAY
            )
        assert refused.value.details["team_id"] == existing

    def test_founding_date_not_in_the_future(self) -> None:
        with pytest.raises(domain.FutureDateError):
            domain.new_team(
                make_unit(),
                members=[make_member()],
                active_team_id=None,
                established_on=date(2026, 1, 2),
                today=TODAY,
            )


class TestMembership:
    def test_adding_a_member_raises_the_version_by_one(self) -> None:
        team = make_team(members=2)
        member = make_member()
        changed = domain.add_member(team, member, today=TODAY)
        assert changed.version == team.version + 1
        assert changed.members == (*team.members, dataclasses.replace(member, joined_on=TODAY))

    def test_a_second_leader_is_refused_naming_the_first(self) -> None:
        team = make_team(members=2)
        assert team.leader is not None
        with pytest.raises(domain.LeaderAlreadyPresentError) as refused:
            domain.add_member(team, make_member("leader"), today=TODAY)
        assert refused.value.details["leader_member_id"] == team.leader.member_id

    def test_removing_a_member(self) -> None:
        team = make_team(members=3)
        gone = team.members[1]
        changed = domain.remove_member(team, gone.member_id, today=TODAY)
        assert changed.version == 2
        assert gone not in changed.members
        assert len(changed.members) == 2
        assert changed.former_members == (dataclasses.replace(gone, left_on=TODAY),)

    def test_removing_the_leader_leaves_a_team_without_leader(self) -> None:
        team = make_team(members=2)
        assert team.leader is not None
        changed = domain.remove_member(team, team.leader.member_id, today=TODAY)
        assert changed.leader is None
        assert domain.add_member(changed, make_member("leader"), today=TODAY).leader is not None

    def test_removing_the_last_member_is_refused(self) -> None:
        team = make_team(members=1)
        with pytest.raises(domain.LastMemberError, match="dissolve"):
            domain.remove_member(team, team.members[0].member_id, today=TODAY)

    def test_removing_an_unknown_member(self) -> None:
        with pytest.raises(domain.MemberNotFoundError):
            domain.remove_member(make_team(), uuid.uuid4(), today=TODAY)

    def test_dissolving_raises_the_version_and_ends_changes(self) -> None:
        team = domain.dissolve(make_team(members=2), today=TODAY)
        assert (team.status, team.version) == ("dissolved", 2)
        with pytest.raises(domain.TeamDissolvedError):
            domain.dissolve(team, today=TODAY)
        with pytest.raises(domain.TeamDissolvedError):
            domain.add_member(team, make_member(), today=TODAY)
        with pytest.raises(domain.TeamDissolvedError):
            domain.remove_member(team, team.members[0].member_id, today=TODAY)

    def test_versions_grow_by_one_per_change(self) -> None:
        team = make_team(members=2)
        team = domain.add_member(team, make_member(), today=TODAY)
        team = domain.remove_member(team, team.members[-1].member_id, today=TODAY)
        team = domain.dissolve(team, today=TODAY)
        assert team.version == 4


class TestDates:
    """DESIGN "Time": every date in [2020-01-01, today], intervals in order, members inside."""

    def test_defaults_today_members_join_on_the_founding_date(self) -> None:
        given = make_member(joined_on=None)
        team = domain.new_team(
            make_unit(),
            members=[given],
            active_team_id=None,
            established_on=date(2022, 3, 15),
            today=TODAY,
        )
        assert team.members[0].joined_on == date(2022, 3, 15)
        assert (
            domain.new_team(
                make_unit(), members=[make_member()], active_team_id=None, today=TODAY
            ).established_on
            == TODAY
        )

    @pytest.mark.parametrize(
        ("day", "refusal"),
        [
            (date(2019, 12, 31), domain.DateBeforeEarliestError),
            (date(2026, 1, 2), domain.FutureDateError),
        ],
    )
    def test_every_date_lies_between_the_floor_and_today(
        self, day: date, refusal: type[domain.RegistryError]
    ) -> None:
        team = make_team(established_on=date(2021, 1, 1))
        with pytest.raises(refusal):
            domain.new_team(
                make_unit(),
                members=[make_member()],
                active_team_id=None,
                established_on=day,
                today=TODAY,
            )
        with pytest.raises(refusal):
            domain.add_member(team, domain.new_member("A", "member", joined_on=day), today=TODAY)
        with pytest.raises(refusal):
            domain.remove_member(team, team.members[1].member_id, today=TODAY, left_on=day)
        with pytest.raises(refusal):
            domain.dissolve(team, today=TODAY, dissolved_on=day)

    def test_the_floor_and_today_themselves_are_taken(self) -> None:
        team = domain.new_team(
            make_unit(),
            members=[make_member()],
            active_team_id=None,
            established_on=date(2020, 1, 1),
            today=TODAY,
        )
        assert domain.dissolve(team, today=TODAY, dissolved_on=TODAY).dissolved_on == TODAY

    def test_dissolved_before_established(self) -> None:
        team = make_team(established_on=date(2022, 5, 1))
        with pytest.raises(domain.DissolvedBeforeEstablishedError):
            domain.dissolve(team, today=TODAY, dissolved_on=date(2022, 4, 30))
        assert domain.dissolve(team, today=TODAY, dissolved_on=date(2022, 5, 1)).version == 2

    def test_left_before_joined(self) -> None:
        team = make_team(members=2)
        member = team.members[1]
        assert member.joined_on == TODAY
        with pytest.raises(domain.LeftBeforeJoinedError):
            domain.remove_member(team, member.member_id, today=TODAY, left_on=date(2025, 12, 31))

    def test_member_dates_lie_within_the_team(self) -> None:
        team = make_team(members=2, established_on=date(2022, 5, 1))
        early = domain.new_member("A", "member", joined_on=date(2022, 4, 1))
        with pytest.raises(domain.MemberOutsideTeamDatesError):
            domain.add_member(team, early, today=TODAY)
        with pytest.raises(domain.MemberOutsideTeamDatesError):
            domain.new_team(
                make_unit(),
                members=[early],
                active_team_id=None,
                established_on=date(2022, 5, 1),
                today=TODAY,
            )
        later = domain.add_member(
            team, domain.new_member("B", "member", joined_on=date(2023, 1, 1)), today=TODAY
        )
        with pytest.raises(domain.MemberOutsideTeamDatesError):
            domain.dissolve(later, today=TODAY, dissolved_on=date(2022, 12, 31))


class TestContracts:
    def test_team_state_is_the_whole_team_without_phones(self) -> None:
        member = domain.new_member("Lò Văn Pâng", "leader", "0912345678")
        team = domain.new_team(make_unit(), members=[member], active_team_id=None, today=TODAY)
        assert team.state() == TeamState(
            team_id=team.team_id,
            unit_code=LEGACY_COMMUNE,
            unit_level="commune",
            name=None,
            established_on=TODAY,
            status="active",
            version=1,
            members=(
                MemberState(
                    member_id=member.member_id,
                    full_name="Lò Văn Pâng",
                    role="leader",
                    joined_on=TODAY,
                ),
            ),
        )


class TestEdition:
    def test_query_or_body_or_default(self) -> None:
        assert domain.resolve_edition(None, None, "2025") == "2025"
        assert domain.resolve_edition("legacy", None, "2025") == "legacy"
        assert domain.resolve_edition(None, "legacy", "2025") == "legacy"
        assert domain.named_edition(None, None) is None

    def test_query_and_body_must_agree(self) -> None:
        with pytest.raises(domain.EditionMismatchError):
            domain.resolve_edition("legacy", "2025", "2025")


def test_training_is_recorded_once_and_keeps_the_date_window() -> None:
    team = make_team(members=1)
    member_id = team.members[0].member_id
    today = date(2026, 11, 28)

    trained = domain.record_training(team, member_id, date(2022, 11, 30), today=today)

    assert trained.version == team.version + 1
    assert trained.state().trained_count == 1
    assert domain.record_training(trained, member_id, date(2022, 11, 30), today=today) is trained
    with pytest.raises(domain.FutureDateError):
        domain.record_training(team, member_id, date(2026, 11, 29), today=today)
    with pytest.raises(domain.DateBeforeEarliestError):
        domain.record_training(team, member_id, date(2019, 12, 31), today=today)
    with pytest.raises(domain.DateBeforeEarliestError):
        domain.new_member("Lò Thị B", "member", trained_on=date(2019, 1, 1), today=today)
