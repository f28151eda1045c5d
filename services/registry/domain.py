"""Registry rules and entities (units, teams, members) that every change is decided by; no I/O.

Use cases load entities, ask these functions to decide, then save the result and queue
the events it names. A refused change raises a `RegistryError` subclass whose `code` and
details tell the caller what to fix; the HTTP layer maps each class to its status.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from shared.contracts.dates import EARLIEST_DATE
from shared.contracts.events.registry import (
    CameFrom,
    MemberState,
    Placement,
    Role,
    TeamState,
    TeamStatus,
    UnitState,
)
from shared.contracts.units import EDITION_LEVELS, Edition, Level
from shared.web.errors import DomainError

MAX_NAME_LENGTH = 200
MAX_KIND_LENGTH = 50
# At most this many members at once, at creation and after every addition alike.
MAX_MEMBERS = 500
# A phone number, once spaces, dots, dashes and a leading '+' are dropped: Vietnamese
# numbers are 10 digits (0 and 9), 11 for landlines with a 3-digit area code or written
# with the country code 84 instead of the 0; 9 when written without the leading 0.
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 9, 11
DEFAULT_VILLAGE_KIND = "thôn"
CODE_WIDTHS: dict[Level, int] = {"province": 2, "district": 3, "commune": 5}
_VILLAGE_NUMBER = re.compile(r"[0-9]{3,6}")
_PHONE = re.compile(r"\+?[0-9][0-9 .\-]{5,19}")
# Unicode categories a name may not hold: control (Cc), format (Cf: bidirectional overrides,
# zero-width characters, soft hyphens, which make one name display as another) and lone
# surrogates (Cs, which no UTF-8 text can hold).
_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "invisible formatting", "Cs": "surrogate"}


class RegistryError(DomainError):
    """A change the registry's rules refuse."""


class UnitNotFoundError(RegistryError):
    code = "unit_not_found"


class UnknownUnitError(RegistryError):
    """A request refers to a unit that does not exist (the request is wrong, not the URL)."""

    code = "unknown_unit"


class WrongLevelError(RegistryError):
    code = "wrong_level"


class InvalidUnitCodeError(RegistryError):
    code = "invalid_unit_code"


class UnitCodeTakenError(RegistryError):
    code = "unit_code_taken"


class TeamNotFoundError(RegistryError):
    code = "team_not_found"


class UnitHasActiveTeamError(RegistryError):
    code = "unit_has_active_team"


class NoMembersError(RegistryError):
    code = "no_members"


class MoreThanOneLeaderError(RegistryError):
    code = "more_than_one_leader"


class LeaderAlreadyPresentError(RegistryError):
    code = "leader_already_present"


class MemberNotFoundError(RegistryError):
    code = "member_not_found"


class LastMemberError(RegistryError):
    code = "last_member"


class TeamDissolvedError(RegistryError):
    code = "team_dissolved"


class EditionMismatchError(RegistryError):
    code = "edition_mismatch"


class FutureDateError(RegistryError):
    code = "date_in_future"


class OutsideProvinceError(RegistryError):
    """A placement on a unit of a 2025 province the team's legacy province did not go into."""

    code = "outside_province"


class DateBeforeEarliestError(RegistryError):
    code = "date_before_earliest"


class DissolvedBeforeEstablishedError(RegistryError):
    code = "dissolved_before_established"


class LeftBeforeJoinedError(RegistryError):
    code = "left_before_joined"


class MemberOutsideTeamDatesError(RegistryError):
    """A member's dates must lie within the team's (joined on or after it was established,
    joined and left on or before it was dissolved)."""

    code = "member_outside_team_dates"


def check_date(what: str, day: date, today: date) -> date:
    """A business date within [EARLIEST_DATE, today] (DESIGN "Time"), or the rule it breaks."""
    if day < EARLIEST_DATE:
        raise DateBeforeEarliestError(
            f"{what} {day} is before {EARLIEST_DATE}, the earliest date the programme takes",
            field=what,
            value=day,
            earliest=EARLIEST_DATE,
        )
    if day > today:
        raise FutureDateError(
            f"{what} {day} is in the future (today in Vietnam is {today})",
            field=what,
            value=day,
            today=today,
        )
    return day


class TooManyMembersError(RegistryError):
    code = "too_many_members"


def _check_member_count(count: int) -> None:
    if count > MAX_MEMBERS:
        raise TooManyMembersError(
            f"a team has at most {MAX_MEMBERS} members; this change would make {count}",
            members=count,
            limit=MAX_MEMBERS,
        )


def normalize_text(value: str, *, max_length: int = MAX_NAME_LENGTH, what: str = "name") -> str:
    """NFC form without outer whitespace; refuses blanks, control, format (Cf) and surrogate
    characters, and overlong text.

    Length counts characters of the NFC form, so a name typed with combining accents (NFD)
    is measured as it will be stored.
    """
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValueError(f"{what} must not be blank")
    for ch in text:
        if (kind := _REFUSED_CATEGORIES.get(unicodedata.category(ch))) is not None:
            raise ValueError(f"{what} must not contain {kind} characters (U+{ord(ch):04X})")
    if len(text) > max_length:
        raise ValueError(f"{what} has {len(text)} characters; at most {max_length} are allowed")
    return text


def normalize_phone(value: str) -> str:
    phone = value.strip()
    if not _PHONE.fullmatch(phone):
        raise ValueError("phone must be digits, spaces, dots or dashes, '+' first")
    digits = sum(ch.isdigit() for ch in phone)
    if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS:
        raise ValueError(
            f"phone has {digits} digits; a Vietnamese number has "
            f"{MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS}"
        )
    return phone


def official_code(level: Level, number: int) -> str:
    """An official code as the registry keys it: zero-padded to its level's width."""
    return f"{number:0{CODE_WIDTHS[level]}d}"


@dataclass(frozen=True)
class Unit:
    """An administrative unit of one edition; `path` runs from its province to itself."""

    edition: Edition
    code: str
    name: str
    level: Level
    kind: str
    parent_code: str | None
    path: tuple[str, ...]
    # Carried from `cdtt units load` into the unit.registered event, not stored here (the
    # crosswalk itself is in the registry's unit_links).
    lat: float | None = None
    lon: float | None = None
    came_from: tuple[CameFrom, ...] = ()

    def state(self) -> UnitState:
        return UnitState(
            code=self.code,
            name=self.name,
            level=self.level,
            kind=self.kind,
            parent_code=self.parent_code,
            lat=self.lat,
            lon=self.lon,
            came_from=self.came_from,
        )


def child_level(edition: Edition, level: Level) -> Level | None:
    levels = EDITION_LEVELS[edition]
    index = levels.index(level)
    return levels[index + 1] if index + 1 < len(levels) else None


def village_code(commune_code: str, number: int) -> str:
    """The code the registry assigns to a commune's n-th village: `<commune>-<NNN>`."""
    return f"{commune_code}-{number:03d}"


def village_number(commune_code: str, code: str) -> int | None:
    """The n of `<commune>-<NNN>`, or None when `code` is not a village code of that commune.

    Only the canonical spelling counts (`-001`, never `-0001`), so one number is one code.
    """
    prefix = f"{commune_code}-"
    digits = code.removeprefix(prefix)
    if not code.startswith(prefix) or not _VILLAGE_NUMBER.fullmatch(digits):
        return None
    number = int(digits)
    return number if village_code(commune_code, number) == code and number > 0 else None


def next_village_code(commune_code: str, existing_codes: Iterable[str]) -> str:
    """One past the highest number used under the commune, so codes are never reused."""
    numbers = [village_number(commune_code, code) for code in existing_codes]
    return village_code(commune_code, max((n for n in numbers if n is not None), default=0) + 1)


def new_village(
    parent: Unit,
    *,
    name: str,
    kind: str | None,
    code: str | None,
    existing_codes: Iterable[str],
) -> Unit:
    """A village under a commune, with the caller's code or the next free one."""
    if parent.level != "commune":
        raise WrongLevelError(
            f"villages are registered under a commune; {parent.code} is a {parent.level}",
            parent_code=parent.code,
            parent_level=parent.level,
        )
    existing = set(existing_codes)
    if code is None:
        code = next_village_code(parent.code, existing)
    elif village_number(parent.code, code) is None:
        raise InvalidUnitCodeError(
            f"a village code under commune {parent.code} reads {parent.code}-NNN "
            f"(001 to 999999, no extra zeros); got {code!r}",
            unit_code=code,
        )
    elif code in existing:
        raise UnitCodeTakenError(f"unit code {code} is already registered", unit_code=code)
    return Unit(
        edition=parent.edition,
        code=code,
        name=normalize_text(name),
        level="village",
        kind=normalize_text(kind or DEFAULT_VILLAGE_KIND, max_length=MAX_KIND_LENGTH, what="kind"),
        parent_code=parent.code,
        path=(*parent.path, code),
    )


@dataclass(frozen=True)
class Member:
    """A member; `joined_on` None only until the team it joins dates it (new_team, add_member)."""

    member_id: uuid.UUID
    full_name: str
    role: Role
    phone: str | None = None
    trained_on: date | None = None
    joined_on: date | None = None
    left_on: date | None = None

    def state(self) -> MemberState:
        # Phones stay in the registry: events carry no personal contact details.
        return MemberState(
            member_id=self.member_id,
            full_name=self.full_name,
            role=self.role,
            trained_on=self.trained_on,
            joined_on=self.joined_on,
            left_on=self.left_on,
        )


def new_member(
    full_name: str,
    role: Role,
    phone: str | None = None,
    *,
    trained_on: date | None = None,
    today: date | None = None,
    joined_on: date | None = None,
) -> Member:
    if trained_on is not None:
        if today is None:
            raise TypeError("new_member needs today to check trained_on")
        check_date("trained_on", trained_on, today)
    return Member(
        member_id=uuid.uuid4(),
        full_name=normalize_text(full_name, what="full_name"),
        role=role,
        phone=None if phone is None else normalize_phone(phone),
        trained_on=trained_on,
        joined_on=joined_on,
    )


def record_training(
    team: Team, member_id: uuid.UUID, trained_on: date | None, *, today: date
) -> Team:
    """The team with one member's training date set (or cleared with None)."""
    team._require_active()
    if trained_on is not None:
        check_date("trained_on", trained_on, today)
    found = next((m for m in team.members if m.member_id == member_id), None)
    if found is None:
        raise MemberNotFoundError(
            f"team {team.team_id} has no member {member_id}",
            team_id=team.team_id,
            member_id=member_id,
        )
    if found.trained_on == trained_on:
        return team  # nothing changes: no new version, no event
    members = tuple(
        replace(m, trained_on=trained_on) if m.member_id == member_id else m for m in team.members
    )
    return replace(team, members=members, version=team.version + 1)


@dataclass(frozen=True)
class Team:
    """A team attached to one unit; every change returns a new Team one version higher."""

    team_id: uuid.UUID
    edition: Edition
    unit_code: str
    unit_level: Level
    unit_path: tuple[str, ...]
    name: str | None
    established_on: date | None
    status: TeamStatus
    version: int
    members: tuple[Member, ...] = field(default=())
    # Where the team counts in the other edition (a legacy team on the 2025 map).
    placements: tuple[Placement, ...] = field(default=())
    dissolved_on: date | None = None
    # Removed members, with their left_on: the team's history travels in its state.
    former_members: tuple[Member, ...] = field(default=())

    @property
    def leader(self) -> Member | None:
        return next((m for m in self.members if m.role == "leader"), None)

    def state(self) -> TeamState:
        return TeamState(
            team_id=self.team_id,
            unit_code=self.unit_code,
            unit_level=self.unit_level,
            name=self.name,
            established_on=self.established_on,
            status=self.status,
            dissolved_on=self.dissolved_on,
            version=self.version,
            members=tuple(m.state() for m in self.members),
            placements=self.placements,
            former_members=tuple(m.state() for m in self.former_members),
        )

    def placement_in(self, edition: Edition) -> Placement | None:
        return next((p for p in self.placements if p.edition == edition), None)

    def _require_active(self) -> None:
        if self.status != "active":
            raise TeamDissolvedError(f"team {self.team_id} is dissolved", team_id=self.team_id)


def _check_leaders(members: Sequence[Member]) -> None:
    leaders = [m for m in members if m.role == "leader"]
    if len(leaders) > 1:
        raise MoreThanOneLeaderError(
            f"a team has at most one leader; {len(leaders)} were given", leaders=len(leaders)
        )


def new_team(
    unit: Unit,
    *,
    members: Sequence[Member],
    active_team_id: uuid.UUID | None,
    name: str | None = None,
    established_on: date | None = None,
    today: date,
) -> Team:
    """A unit's new active team: at least one member, at most one leader, none active yet."""
    if active_team_id is not None:
        raise UnitHasActiveTeamError(
            f"unit {unit.code} already has an active team: {active_team_id}",
            unit_code=unit.code,
            team_id=active_team_id,
        )
    if not members:
        raise NoMembersError("a team has at least one member")
    _check_leaders(members)
    _check_member_count(len(members))
    established_on = check_date("established_on", established_on or today, today)
    # Members given with the team join on its established_on unless they say otherwise.
    members = [
        _dated_member(replace(m, joined_on=m.joined_on or established_on), established_on, today)
        for m in members
    ]
    return Team(
        team_id=uuid.uuid4(),
        edition=unit.edition,
        unit_code=unit.code,
        unit_level=unit.level,
        unit_path=unit.path,
        name=None if name is None else normalize_text(name),
        established_on=established_on,
        status="active",
        version=1,
        members=tuple(members),
    )


# A decision about one team: the team as it would be after the change.
TeamChange = Callable[[Team], Team]


def _dated_member(member: Member, established_on: date | None, today: date) -> Member:
    """The member with its dates checked: joined on or after the team was established."""
    joined_on = check_date("joined_on", member.joined_on or today, today)
    if established_on is not None and joined_on < established_on:
        raise MemberOutsideTeamDatesError(
            f"joined_on {joined_on} is before the team was established ({established_on})",
            member_id=member.member_id,
            joined_on=joined_on,
            established_on=established_on,
        )
    return replace(member, joined_on=joined_on)


def add_member(team: Team, member: Member, *, today: date) -> Team:
    """The team with one more member (joining today unless dated); one leader at most."""
    team._require_active()
    member = _dated_member(member, team.established_on, today)
    if member.role == "leader" and (leader := team.leader) is not None:
        raise LeaderAlreadyPresentError(
            f"team {team.team_id} already has a leader ({leader.member_id}); remove or demote "
            "that member first",
            team_id=team.team_id,
            leader_member_id=leader.member_id,
        )
    _check_member_count(len(team.members) + 1)
    return replace(team, members=(*team.members, member), version=team.version + 1)


def remove_member(
    team: Team, member_id: uuid.UUID, *, today: date, left_on: date | None = None
) -> Team:
    """The team without one member, who becomes a former member left on `left_on` (today).

    Removing the leader is allowed: a team may be without a leader until a new one is
    added (the rule is at most one). Removing the last member is refused, because a team
    has at least one member: dissolve the team instead.
    """
    team._require_active()
    remaining = tuple(m for m in team.members if m.member_id != member_id)
    leaving = next((m for m in team.members if m.member_id == member_id), None)
    if leaving is None:
        raise MemberNotFoundError(
            f"team {team.team_id} has no member {member_id}",
            team_id=team.team_id,
            member_id=member_id,
        )
    if not remaining:
        raise LastMemberError(
            f"member {member_id} is the last member of team {team.team_id}; a team has at "
            "least one member, so dissolve the team instead",
            team_id=team.team_id,
            member_id=member_id,
        )
    left_on = check_date("left_on", left_on or today, today)
    if leaving.joined_on is not None and left_on < leaving.joined_on:
        raise LeftBeforeJoinedError(
            f"left_on {left_on} is before the member joined ({leaving.joined_on})",
            member_id=member_id,
            left_on=left_on,
            joined_on=leaving.joined_on,
        )
    return replace(
        team,
        members=remaining,
        former_members=(*team.former_members, replace(leaving, left_on=left_on)),
        version=team.version + 1,
    )


def dissolve(team: Team, *, today: date, dissolved_on: date | None = None) -> Team:
    """The team dissolved on `dissolved_on` (today): its unit is no longer covered from that
    day and may get a new team. No member's dates may come after it."""
    team._require_active()
    dissolved_on = check_date("dissolved_on", dissolved_on or today, today)
    if team.established_on is not None and dissolved_on < team.established_on:
        raise DissolvedBeforeEstablishedError(
            f"dissolved_on {dissolved_on} is before the team was established "
            f"({team.established_on})",
            dissolved_on=dissolved_on,
            established_on=team.established_on,
        )
    member_days = [
        day
        for m in (*team.members, *team.former_members)
        for day in (m.joined_on, m.left_on)
        if day is not None
    ]
    if member_days and max(member_days) > dissolved_on:
        raise MemberOutsideTeamDatesError(
            f"dissolved_on {dissolved_on} is before a member's date ({max(member_days)}); "
            "a member's dates lie within the team's",
            dissolved_on=dissolved_on,
            latest_member_date=max(member_days),
        )
    return replace(team, status="dissolved", dissolved_on=dissolved_on, version=team.version + 1)


def named_edition(query: Edition | None, body: Edition | None) -> Edition | None:
    """The edition a request names, in its query or its body; the two must agree."""
    if query is not None and body is not None and query != body:
        raise EditionMismatchError(
            f"edition {query!r} in the query and {body!r} in the body disagree",
            query=query,
            body=body,
        )
    return query or body


def resolve_edition(query: Edition | None, body: Edition | None, default: Edition) -> Edition:
    """The edition a request names, else the default (CDTT_EDITION)."""
    return named_edition(query, body) or default
