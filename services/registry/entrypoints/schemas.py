"""What the registry's HTTP API accepts and answers: frozen models, unknown fields refused.

Names are NFC-normalised and trimmed here, and measured after that (at most 200
characters), so text typed with combining accents is stored and returned in one form.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.registry import domain
from services.registry.targets import Target
from services.registry.use_cases import NewMember, SetTarget
from shared.contracts.events.activity import OutcomeKind
from shared.contracts.events.registry import (
    OutcomeTotal,
    Percent,
    Placement,
    Role,
    TeamStatus,
)
from shared.contracts.units import Edition, Level

Name = Annotated[
    str,
    AfterValidator(domain.normalize_text),
    Field(description="1 to 200 characters after NFC normalisation; outer spaces trimmed"),
]
FullName = Annotated[
    str,
    AfterValidator(lambda value: domain.normalize_text(value, what="full_name")),
    Field(description="1 to 200 characters after NFC normalisation; outer spaces trimmed"),
]
Kind = Annotated[
    str,
    AfterValidator(
        lambda value: domain.normalize_text(value, max_length=domain.MAX_KIND_LENGTH, what="kind")
    ),
    Field(description="thôn, bản, tổ dân phố, ấp, ... (default thôn); at most 50 characters"),
]
Phone = Annotated[
    str,
    AfterValidator(domain.normalize_phone),
    Field(
        description="9 to 11 digits, with spaces, dots or dashes between and '+' first",
        examples=["0912 345 678"],
    ),
]
Code = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z-]+$")]
EditionField = Annotated[
    Edition | None, Field(description="edition of the units named; default CDTT_EDITION")
]


class RequestModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class RegisterVillageRequest(RequestModel):
    parent_code: Code
    name: Name
    kind: Kind | None = None
    code: Code | None = Field(
        default=None, description="`<commune>-NNN`; the next free number when omitted"
    )
    edition: EditionField = None


class MemberRequest(RequestModel):
    full_name: FullName
    role: Role
    phone: Phone | None = None
    trained_on: date | None = Field(
        default=None,
        description="the day the member finished the programme's training "
        "(2020-01-01 to today in Vietnam); absent: not trained (yet)",
    )
    joined_on: date | None = Field(
        default=None,
        description="with the team: its established_on when omitted; added later: today",
    )

    def command(self) -> NewMember:
        return NewMember(
            full_name=self.full_name,
            role=self.role,
            phone=self.phone,
            trained_on=self.trained_on,
            joined_on=self.joined_on,
        )


class MemberTrainingRequest(RequestModel):
    """A later change to one member: when they were trained (null clears it)."""

    trained_on: date | None = Field(
        description="the day the member finished the programme's training; null: not trained"
    )
    edition: EditionField = None


class AddMemberRequest(MemberRequest):
    edition: EditionField = None


class RegisterTeamRequest(RequestModel):
    unit_code: Code
    name: Name | None = None
    established_on: date | None = Field(
        default=None, description="2020-01-01 to today (Vietnam); today when omitted"
    )
    # No lower bound here: the domain refuses an empty team with a clearer error.
    members: tuple[MemberRequest, ...] = Field(max_length=domain.MAX_MEMBERS)
    edition: EditionField = None


class DissolveTeamRequest(RequestModel):
    edition: EditionField = None
    dissolved_on: date | None = Field(
        default=None, description="on or after established_on and every member's dates; today"
    )


class PlaceTeamRequest(RequestModel):
    edition: Edition = Field(description="the map the team is placed on: 2025")
    unit_code: Code = Field(description="a 2025 commune or village of the team's 2025 province")


class UnitOut(ResponseModel):
    edition: Edition
    code: str
    name: str
    level: Level
    kind: str
    parent_code: str | None
    path: tuple[str, ...]

    @classmethod
    def of(cls, unit: domain.Unit) -> UnitOut:
        return cls(
            edition=unit.edition,
            code=unit.code,
            name=unit.name,
            level=unit.level,
            kind=unit.kind,
            parent_code=unit.parent_code,
            path=unit.path,
        )


class UnitList(ResponseModel):
    items: tuple[UnitOut, ...]


class LinkedUnitOut(UnitOut):
    partly: bool = Field(description="only part of the legacy unit went into the 2025 one")

    @classmethod
    def of_link(cls, unit: domain.Unit, partly: bool) -> LinkedUnitOut:
        return cls(**UnitOut.of(unit).model_dump(), partly=partly)


class LinkedUnitList(ResponseModel):
    edition: Edition
    code: str
    items: tuple[LinkedUnitOut, ...]


class PlacementOut(ResponseModel):
    """Where a team counts on one map; `unit_code` None: in the province, on no unit."""

    edition: Edition
    unit_code: str | None
    unit_level: Level | None
    unit_path: tuple[str, ...]
    placed: bool = Field(description="false: waits for a publisher of the province to place it")

    @classmethod
    def home(cls, team: domain.Team) -> PlacementOut:
        return cls(
            edition=team.edition,
            unit_code=team.unit_code,
            unit_level=team.unit_level,
            unit_path=team.unit_path,
            placed=True,
        )

    @classmethod
    def of(cls, placement: Placement) -> PlacementOut:
        return cls(
            edition=placement.edition,
            unit_code=placement.unit_code,
            unit_level=placement.unit_level,
            unit_path=placement.unit_path,
            placed=placement.placed,
        )


class MemberOut(ResponseModel):
    member_id: uuid.UUID
    full_name: str
    role: Role
    phone: str | None
    trained_on: date | None
    joined_on: date | None
    left_on: date | None = None

    @classmethod
    def of(cls, member: domain.Member, *, phone: bool = True) -> MemberOut:
        """`phone=False` for a key that may not see phones (operators): null."""
        return cls(
            member_id=member.member_id,
            full_name=member.full_name,
            role=member.role,
            phone=member.phone if phone else None,
            trained_on=member.trained_on,
            joined_on=member.joined_on,
            left_on=member.left_on,
        )


class AddedMemberOut(MemberOut):
    team_id: uuid.UUID
    team_version: int

    @classmethod
    def of_team(cls, team: domain.Team, member: domain.Member) -> AddedMemberOut:
        return cls(
            **MemberOut.of(member).model_dump(), team_id=team.team_id, team_version=team.version
        )


class TeamOut(ResponseModel):
    team_id: uuid.UUID
    edition: Edition
    unit_code: str
    unit_level: Level
    unit_path: tuple[str, ...]
    name: str | None
    established_on: date | None
    dissolved_on: date | None = None
    status: TeamStatus
    version: int
    members: tuple[MemberOut, ...]
    # Its own edition first, then where it counts on the other map (none: not counted there).
    placements: tuple[PlacementOut, ...]
    former_members: tuple[MemberOut, ...] = ()

    @classmethod
    def of(cls, team: domain.Team, *, phones: bool = True) -> TeamOut:
        """`phones=False` for a key that may not see members' phones (operators)."""
        return cls(
            team_id=team.team_id,
            edition=team.edition,
            unit_code=team.unit_code,
            unit_level=team.unit_level,
            unit_path=team.unit_path,
            name=team.name,
            established_on=team.established_on,
            dissolved_on=team.dissolved_on,
            status=team.status,
            version=team.version,
            members=tuple(MemberOut.of(m, phone=phones) for m in team.members),
            placements=(
                PlacementOut.home(team),
                *(PlacementOut.of(p) for p in team.placements),
            ),
            former_members=tuple(MemberOut.of(m, phone=phones) for m in team.former_members),
        )


class TeamList(ResponseModel):
    items: tuple[TeamOut, ...]


class SetTargetRequest(RequestModel):
    """A unit's whole target: every part optional, a part left out is no target."""

    due: date | None = Field(default=None, description="the day the target is due (2020-01-01 on)")
    covered_pct: dict[Level, Percent] = Field(
        default_factory=dict,
        description="per level below the unit: the percent of its units to be covered, 0-100",
        examples=[{"commune": 100, "village": 90}],
    )
    members_trained_pct: Percent | None = Field(
        default=None, description="the percent of members to be trained, 0-100"
    )
    outcomes: dict[OutcomeKind, OutcomeTotal] = Field(
        default_factory=dict,
        description="totals (0 to 1,000,000,000) to reach per outcome kind",
        examples=[{"vneid_activations": 50000}],
    )
    edition: EditionField = None

    def command(self, edition: Edition, code: str) -> SetTarget:
        return SetTarget(
            edition=edition,
            code=code,
            due=self.due,
            covered_pct=self.covered_pct,
            members_trained_pct=self.members_trained_pct,
            outcomes=self.outcomes,
        )


class TargetOut(ResponseModel):
    edition: Edition
    code: str
    level: Level
    version: int = Field(description="one higher with every change")
    due: date | None
    covered_pct: dict[Level, float]
    members_trained_pct: float | None
    outcomes: dict[OutcomeKind, int]

    @classmethod
    def of(cls, target: Target) -> TargetOut:
        return cls(
            edition=target.edition,
            code=target.code,
            level=target.level,
            version=target.version,
            due=target.due,
            covered_pct=dict(target.covered_pct),
            members_trained_pct=target.members_trained_pct,
            outcomes=dict(target.outcomes),
        )


class TargetList(ResponseModel):
    edition: Edition
    parent: str | None = Field(description="null: the provinces' targets")
    items: tuple[TargetOut, ...]
