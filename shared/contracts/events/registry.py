"""Contracts of registry.events.v1: units registered and the whole state of teams."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from shared.contracts.dates import today_in_vietnam
from shared.contracts.envelope import Contract, Envelope
from shared.contracts.events.activity import OutcomeKind
from shared.contracts.streams import REGISTRY_EVENTS
from shared.contracts.units import Edition, Level, UnitPath

Role = Literal["leader", "deputy", "member"]
TeamStatus = Literal["active", "dissolved"]


class CameFrom(Contract):
    """A unit of the legacy map that went (wholly, or `partly`) into a 2025 unit."""

    code: str = Field(min_length=1, max_length=20)
    partly: bool = False


class UnitState(Contract):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=200)
    level: Level
    kind: str = Field(max_length=50)
    parent_code: str | None
    # Schema 2: the unit's centre (WGS 84) from the vietnamadminunits data, for the map;
    # None for villages, units missing from that data, and every schema-1 event.
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    # Schema 3: a 2025 province, commune or carried village lists the legacy units it came
    # from (the reform's official crosswalk), so consumers need no copy of the table.
    came_from: tuple[CameFrom, ...] = Field(default=(), max_length=100)


class MemberState(Contract):
    member_id: uuid.UUID
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    # Since schema version 2: the day the member finished the programme's training.
    trained_on: date | None = None
    # Business dates (schema 4): counted from joined_on until the day before left_on.
    joined_on: date | None = None
    left_on: date | None = None


class Placement(Contract):
    """Where a team counts in an edition other than the one it was registered in.

    `unit_path` runs from the province to the unit the team covers there; when the team
    covers no unit in that edition (a legacy district team in 2025, or a team awaiting a
    placement) it is the province alone and `unit_level` is None. `placed` is False while
    a publisher of the province has still to choose the unit (split or unmapped commune).
    """

    edition: Edition
    unit_path: UnitPath = Field(min_length=1, max_length=4)
    unit_level: Level | None
    placed: bool = True

    @property
    def unit_code(self) -> str | None:
        return None if self.unit_level is None else self.unit_path[-1]


class TeamState(Contract):
    """A team's whole current state; `version` grows by one with every change.

    Schema 4 adds the business dates: `dissolved_on`, each member's `joined_on`/`left_on`,
    and `former_members` (removed members with their `left_on`), so the newest state alone
    says the team's whole history. Older events carry none of them: consumers date such
    a state on the event's `occurred_at` (`TeamEvent.dated`).
    """

    team_id: uuid.UUID
    unit_code: str
    unit_level: Level
    name: str | None = Field(default=None, max_length=200)
    established_on: date | None = None
    status: TeamStatus
    dissolved_on: date | None = None
    version: int = Field(ge=1)
    members: tuple[MemberState, ...]
    # Schema 3: the team's placement in each other edition (none in earlier events).
    placements: tuple[Placement, ...] = ()
    former_members: tuple[MemberState, ...] = ()

    @property
    def member_count(self) -> int:
        return len(self.members)

    @property
    def trained_count(self) -> int:
        return sum(m.trained_on is not None for m in self.members)


class _RegistryEvent(Envelope):
    stream: ClassVar[str] = REGISTRY_EVENTS
    producer_name: ClassVar[str] = "registry"


class UnitRegistered(_RegistryEvent):
    type: Literal["unit.registered"] = "unit.registered"
    # 2 added the optional lat/lon; schema-1 payloads read as units without coordinates.
    # 3 added `came_from`; older payloads read as units that came from nothing known.
    schema_version: int = Field(default=3, ge=1)
    payload: UnitState


# Team payload versions: 2 members may carry `trained_on`; 3 the payload carries
# `placements` (the team on the other map); 4 the business dates (`dissolved_on`, members'
# `joined_on`/`left_on`, `former_members`). Older entries still decode: nobody trained, no
# placements, and their dates are read by `dated()`.
TEAM_SCHEMA_VERSION = 4


class _TeamEvent(_RegistryEvent):
    schema_version: int = Field(default=TEAM_SCHEMA_VERSION, ge=1, le=TEAM_SCHEMA_VERSION)
    payload: TeamState

    def dated(self) -> TeamState:
        """The payload with every missing date read as the day the event occurred (Vietnam)."""
        team = self.payload
        day = today_in_vietnam(self.occurred_at)
        established = team.established_on or day

        def member(m: MemberState, *, former: bool) -> MemberState:
            return m.model_copy(
                update={
                    "joined_on": m.joined_on or established,
                    "left_on": m.left_on or (day if former else None),
                }
            )

        return team.model_copy(
            update={
                "established_on": established,
                "dissolved_on": team.dissolved_on or (day if team.status == "dissolved" else None),
                "members": tuple(member(m, former=False) for m in team.members),
                "former_members": tuple(member(m, former=True) for m in team.former_members),
            }
        )


class TeamCreated(_TeamEvent):
    type: Literal["team.created"] = "team.created"
    payload: TeamState


class TeamMembersChanged(_TeamEvent):
    type: Literal["team.members_changed"] = "team.members_changed"
    payload: TeamState


class TeamDissolved(_TeamEvent):
    type: Literal["team.dissolved"] = "team.dissolved"
    payload: TeamState


class TeamPlaced(_TeamEvent):
    """A publisher placed (or moved) a team in another edition: a new version of its state."""

    type: Literal["team.placed"] = "team.placed"
    payload: TeamState


Percent = Annotated[float, Field(ge=0, le=100)]
# An outcome total a unit may aim at: a billion is far above the whole country's.
OutcomeTotal = Annotated[int, Field(ge=0, le=1_000_000_000)]


class TargetState(Contract):
    """What a province aims for at one unit, by `due`; a part left out is not a target.

    `covered_pct`: per level below the unit, the share of its units to be covered (0-100);
    `members_trained_pct`: the share of members trained; `outcomes`: totals by kind. Each
    PUT replaces the unit's whole target, one `version` higher, so a consumer keeps the
    newest version per unit whatever order the events come in.
    """

    code: str = Field(min_length=1, max_length=20)
    level: Level
    version: int = Field(ge=1)
    due: date | None = None
    covered_pct: dict[Level, Percent] = Field(default_factory=dict)
    members_trained_pct: Percent | None = None
    outcomes: dict[OutcomeKind, OutcomeTotal] = Field(default_factory=dict)


class TargetSet(_RegistryEvent):
    """An operator or admin of the province set (or replaced) a unit's target."""

    type: Literal["target.set"] = "target.set"
    schema_version: int = Field(default=1, ge=1, le=1)
    payload: TargetState


TeamEvent = TeamCreated | TeamMembersChanged | TeamDissolved | TeamPlaced
RegistryEvent = UnitRegistered | TeamEvent | TargetSet
