"""Stream traffic for the benches: a unit hierarchy, its teams, and support events, as envelopes.

Envelopes are built as plain dicts and serialised with orjson (a million through pydantic
would take longer than the bench itself); `check_shapes` decodes a sample of each kind
with the consumers' own decoder, so a drift from the contracts fails the bench loudly.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from shared.contracts.events import decode_event
from shared.contracts.events.activity import CATEGORIES
from shared.contracts.streams import ACTIVITY_EVENTS, ENVELOPE_FIELD, REGISTRY_EVENTS, stream_key
from shared.contracts.units import Level

EDITION = "2025"
OCCURRED_AT = "2026-11-28T03:00:00Z"
FIRST_DAY = date(2025, 7, 1)
DAYS = 500


@dataclass(frozen=True)
class Team:
    team_id: uuid.UUID
    path: tuple[str, ...]
    level: Level
    members: int


@dataclass(frozen=True)
class Hierarchy:
    """Provinces → communes → villages (2025 edition codes), a team on most villages."""

    units: list[tuple[tuple[str, ...], Level]]
    teams: list[Team]

    @property
    def villages(self) -> int:
        return sum(level == "village" for _, level in self.units)


def hierarchy(
    provinces: int, communes: int, villages: int, *, covered: float = 0.9, seed: int = 1
) -> Hierarchy:
    """`communes` per province and `villages` per commune; `covered` of villages have a team."""
    rng = random.Random(seed)
    units: list[tuple[tuple[str, ...], Level]] = []
    teams: list[Team] = []
    for p in range(provinces):
        province = f"{p + 1:02d}"
        units.append(((province,), "province"))
        for c in range(communes):
            commune = (province, f"{p + 1:02d}{c:03d}")
            units.append((commune, "commune"))
            for v in range(villages):
                village = (*commune, f"{commune[-1]}-{v + 1:03d}")
                units.append((village, "village"))
                if rng.random() < covered:
                    teams.append(Team(_uuid(rng), village, "village", rng.randint(3, 8)))
    return Hierarchy(units, teams)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _envelope(
    rng: random.Random, kind: str, producer: str, path: Sequence[str], payload: dict[str, Any]
) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(_uuid(rng)),
            "type": kind,
            "schema_version": 1,
            "occurred_at": OCCURRED_AT,
            "producer": producer,
            "edition": EDITION,
            "unit_path": list(path),
            "payload": payload,
            "actor": None,
        }
    )


def unit_envelopes(tree: Hierarchy, seed: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    return [
        _envelope(
            rng,
            "unit.registered",
            "registry",
            path,
            {
                "code": path[-1],
                "name": f"Đơn vị {path[-1]}",
                "level": level,
                "kind": level,
                "parent_code": path[-2] if len(path) > 1 else None,
            },
        )
        for path, level in tree.units
    ]


def team_envelopes(tree: Hierarchy, seed: int = 3) -> list[bytes]:
    """One team.created per team (version 1, its members)."""
    rng = random.Random(seed)
    return [
        _envelope(
            rng,
            "team.created",
            "registry",
            team.path,
            {
                "team_id": str(team.team_id),
                "unit_code": team.path[-1],
                "unit_level": team.level,
                "name": None,
                "established_on": None,
                "status": "active",
                "version": 1,
                "members": [
                    {
                        "member_id": str(_uuid(rng)),
                        "full_name": "Thành viên",
                        "role": "leader" if n == 0 else "member",
                    }
                    for n in range(team.members)
                ],
            },
        )
        for team in tree.teams
    ]


def support_envelopes(tree: Hierarchy, count: int, seed: int) -> list[bytes]:
    """`count` support.recorded events, each by a random team."""
    rng = random.Random(seed)
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS)]
    envelopes = []
    for _ in range(count):
        team = rng.choice(tree.teams)
        payload = {
            "team_id": str(team.team_id),
            "unit_code": team.path[-1],
            "occurred_on": rng.choice(days),
            "category": rng.choice(CATEGORIES),
            "residents_helped": rng.randint(1, 50),
        }
        envelopes.append(_envelope(rng, "support.recorded", "activity", team.path, payload))
    return envelopes


def check_shapes(*samples: Sequence[bytes]) -> None:
    """Decode the first envelope of each list with the consumers' decoder (raises if invalid)."""
    for envelopes in samples:
        if envelopes:
            decode_event(envelopes[0])


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def fill(redis: Redis, key: str, envelopes: Sequence[bytes]) -> None:
    """XADD every envelope to `key`, 5,000 per pipeline."""
    for chunk in chunks(envelopes, 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for envelope in chunk:
                pipe.xadd(key, {ENVELOPE_FIELD: envelope})
            await pipe.execute()


def registry_key(namespace: str) -> str:
    return stream_key(REGISTRY_EVENTS, namespace)


def activity_key(namespace: str) -> str:
    return stream_key(ACTIVITY_EVENTS, namespace)
