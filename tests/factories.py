"""Small builders of request bodies and domain objects for tests; every one takes overrides.

Extend freely: add a builder per thing a test needs, returning fresh objects each call.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date
from typing import Any

from services.registry import domain
from shared.contracts.events.registry import Role
from shared.contracts.units import Edition

# Real units of the legacy edition (loaded from vietnam-provinces by the registry tests):
# Yên Bái province 15, its district Văn Yên 136 (25 communes), commune Xã Lang Thíp 04378.
LEGACY_PROVINCE = "15"
LEGACY_DISTRICT = "136"
LEGACY_COMMUNE = "04378"

_serial = itertools.count(1)

VIETNAMESE_NAMES = (
    "Nguyễn Thị Hồng Nhung",
    "Trần Văn Đức",
    "Lê Thị Ngọc Ánh",
    "Phạm Quốc Huy",
    "Hoàng Thị Thuỷ",
    "Vũ Đình Trường",
    "Đặng Thị Mỹ Duyên",
)


def member_body(**overrides: Any) -> dict[str, Any]:
    """One member as POST /v1/teams and POST /v1/teams/{id}/members take it."""
    n = next(_serial)
    body: dict[str, Any] = {
        "full_name": f"{VIETNAMESE_NAMES[n % len(VIETNAMESE_NAMES)]} {n}",
        "role": "member",
    }
    return body | overrides


def make_members(n: int, *, leader: bool = True, **overrides: Any) -> list[dict[str, Any]]:
    """n member bodies; the first is the leader unless `leader=False`."""
    return [
        member_body(role="leader" if leader and i == 0 else "member", **overrides) for i in range(n)
    ]


def team_body(
    unit_code: Any = LEGACY_COMMUNE, members: Any = 3, **overrides: Any
) -> dict[str, Any]:
    """A POST /v1/teams body for a unit (legacy edition by default).

    `members` is a count (the first one the leader) or the members list itself, as sent.
    """
    body: dict[str, Any] = {
        "unit_code": unit_code,
        "name": f"Tổ công nghệ số cộng đồng {next(_serial)}",
        "established_on": "2022-03-15",
        "members": make_members(members) if isinstance(members, int) else members,
        "edition": "legacy",
    }
    return body | overrides


def village_body(parent_code: Any = LEGACY_COMMUNE, **overrides: Any) -> dict[str, Any]:
    """A POST /v1/units body: a village under a commune (legacy edition by default)."""
    body: dict[str, Any] = {
        "parent_code": parent_code,
        "name": f"Thôn Khe Dứa {next(_serial)}",
        "kind": "thôn",
        "edition": "legacy",
    }
    return body | overrides


def make_unit(
    code: str = LEGACY_COMMUNE,
    *,
    level: Any = "commune",
    edition: Edition = "legacy",
    path: tuple[str, ...] | None = None,
    **overrides: Any,
) -> domain.Unit:
    """A domain Unit (no database): a legacy commune by default."""
    fields: dict[str, Any] = {
        "edition": edition,
        "code": code,
        "name": f"Xã Thử {code}",
        "level": level,
        "kind": "xã",
        "parent_code": LEGACY_DISTRICT,
        "path": path or (LEGACY_PROVINCE, LEGACY_DISTRICT, code),
    }
    return domain.Unit(**(fields | overrides))


def make_member(role: Role = "member", **overrides: Any) -> domain.Member:
    """A domain Member with a fresh id."""
    body = member_body(role=role) | overrides
    return domain.new_member(
        body["full_name"], body["role"], body.get("phone"), joined_on=body.get("joined_on")
    )


def make_team(
    members: int = 3,
    *,
    leader: bool = True,
    unit: domain.Unit | None = None,
    established_on: date | None = None,
    **overrides: Any,
) -> domain.Team:
    """A domain Team, version 1, active, on a legacy commune by default, dated 2026-01-01
    (its members join on its founding date)."""
    team = domain.new_team(
        unit or make_unit(),
        members=[make_member("leader" if leader and i == 0 else "member") for i in range(members)],
        active_team_id=None,
        name="Tổ công nghệ số",
        established_on=established_on,
        today=date(2026, 1, 1),
    )
    return dataclasses.replace(team, **overrides)
