"""Business dates: Vietnamese today whatever the server's zone, and the earliest date taken."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from shared.contracts.dates import VIETNAM_TIME, today_in_vietnam


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
