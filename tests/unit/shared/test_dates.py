"""Business dates: Vietnamese today whatever the server's zone, and the earliest date taken."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from shared.contracts.dates import VIETNAM_TIME, today_in_vietnam
from shared.contracts.events.registry import TEAM_SCHEMA_VERSION, MemberState, TeamDissolved


def test_vietnam_is_seven_hours_ahead_of_utc_all_year() -> None:
    for month in (1, 7):
        assert VIETNAM_TIME.utcoffset(datetime(2025, month, 1, tzinfo=UTC)) == timedelta(hours=7)


def test_today_turns_at_midnight_in_vietnam_not_in_utc() -> None:
    assert today_in_vietnam(datetime(2025, 6, 30, 16, 59, tzinfo=UTC)) == date(2025, 6, 30)
    assert today_in_vietnam(datetime(2025, 6, 30, 17, 0, tzinfo=UTC)) == date(2025, 7, 1)


def test_today_is_the_same_day_whatever_zone_the_time_is_given_in() -> None:
    moment = datetime(2025, 12, 31, 18, 30, tzinfo=UTC)
    new_york = moment.astimezone(timezone(timedelta(hours=-5)))
    assert today_in_vietnam(new_york) == today_in_vietnam(moment) == date(2026, 1, 1)


def test_today_without_a_time_is_now_in_vietnam() -> None:
    before = datetime.now(VIETNAM_TIME).date()
    today = today_in_vietnam()
    assert before <= today <= datetime.now(VIETNAM_TIME).date()


def test_a_team_event_of_schema_1_is_dated_on_the_day_it_occurred() -> None:
    member = MemberState(member_id=uuid.uuid4(), full_name="Lò Văn Pâng", role="leader")
    old = TeamDissolved.model_validate(
        {
            "event_id": uuid.uuid4(),
            "type": "team.dissolved",
            "schema_version": 1,
            "occurred_at": datetime(2022, 5, 26, 18, 0, tzinfo=UTC),  # 27 May in Vietnam
            "producer": "registry",
            "edition": "legacy",
            "unit_path": ["15", "136", "04378"],
            "payload": {
                "team_id": uuid.uuid4(),
                "unit_code": "04378",
                "unit_level": "commune",
                "established_on": "2022-03-15",
                "status": "dissolved",
                "version": 3,
                "members": [member.model_dump()],
            },
        }
    )
    dated = old.dated()
    assert (dated.established_on, dated.dissolved_on) == (date(2022, 3, 15), date(2022, 5, 27))
    assert dated.members[0].joined_on == date(2022, 3, 15)
    assert dated.members[0].left_on is None
    assert (
        TeamDissolved.new(edition="legacy", unit_path=("15",), payload=old.payload).schema_version
        == TEAM_SCHEMA_VERSION
        == 4
    )
