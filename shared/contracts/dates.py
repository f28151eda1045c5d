"""Business dates every event carries: Vietnamese today, and the earliest date the programme knows.

Team, member and support dates decide history (DESIGN "Time"), so "today" is the calendar
day in Vietnam, whatever zone the server runs in, and every date lies in
[EARLIEST_DATE, today_in_vietnam()].
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

# Vietnam keeps one offset all year (no daylight saving): UTC+7, Indochina Time.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")

# No team, member or support date before this one is taken: the programme began in 2021,
# and 2020 leaves room for teams set up before it had a name.
EARLIEST_DATE = date(2020, 1, 1)


def today_in_vietnam(now: datetime | None = None) -> date:
    """The calendar day in Vietnam at `now` (an aware datetime; default the current time)."""
    return (now or datetime.now(VIETNAM_TIME)).astimezone(VIETNAM_TIME).date()
