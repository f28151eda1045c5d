"""Activity test harness: team events as the registry publishes them, request bodies, DB probes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable
from datetime import date
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select

from services.activity.adapters.tables import outbox, support_events, team_directory
from shared.contracts.events import (
    TeamCreated,
    TeamDissolved,
    TeamEvent,
    TeamMembersChanged,
    entry_fields,
)
from shared.contracts.events.registry import MemberState, TeamState, TeamStatus
from shared.contracts.streams import REGISTRY_EVENTS, stream_key
from shared.messaging.consumer import GroupConsumer
from shared.runtime.producer import ProducerRuntime
from shared.runtime.settings import Settings
from tests.waiting import wait_until

_villages = itertools.count(1)


def runtime(app: FastAPI) -> ProducerRuntime:
    built: ProducerRuntime = app.state.runtime
    return built


def directory_consumer(app: FastAPI) -> GroupConsumer:
    """Activity's consumer of registry.events.v1, as its bootstrap started it."""
    consumer: GroupConsumer = app.state.team_directory
    return consumer


def team_state(
    *,
    team_id: uuid.UUID | None = None,
    version: int = 1,
    status: TeamStatus = "active",
    unit_code: str | None = None,
) -> TeamState:
    return TeamState(
        team_id=team_id or uuid.uuid4(),
        unit_code=unit_code or f"04378-{next(_villages):03d}",
        unit_level="village",
        name="Tổ công nghệ số cộng đồng thôn Khe Lóng",
        established_on=date(2022, 3, 15),
        status=status,
        version=version,
        members=(MemberState(member_id=uuid.uuid4(), full_name="Hoàng Văn Sơn", role="leader"),),
    )


def team_event(state: TeamState, kind: type[TeamEvent] | None = None) -> TeamEvent:
    """The registry event for a team state (legacy edition, Yên Bái › Văn Yên › Lang Thíp)."""
    if kind is None:
        kind = TeamDissolved if state.status == "dissolved" else TeamCreated
        kind = TeamMembersChanged if kind is TeamCreated and state.version > 1 else kind
    return kind.new(
        edition="legacy", unit_path=("15", "136", "04378", state.unit_code), payload=state
    )


async def publish(redis: Redis, settings: Settings, *events: TeamEvent) -> None:
    """XADD registry events as the registry's relay would."""
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    for event in events:
        await redis.xadd(key, entry_fields(event))  # type: ignore[arg-type]


async def registered_team(redis: Redis, settings: Settings, app: FastAPI) -> TeamState:
    """A new active team, published and waited for in activity's directory."""
    state = team_state()
    await publish(redis, settings, team_event(state))
    await wait_until(lambda: directory_version(app, state.team_id), message="team in directory")
    return state


async def directory_version(app: FastAPI, team_id: uuid.UUID) -> int | None:
    async with runtime(app).engine.connect() as conn:
        version: int | None = await conn.scalar(
            select(team_directory.c.version).where(team_directory.c.team_id == team_id)
        )
    return version


async def stored_event_ids(app: FastAPI) -> set[uuid.UUID]:
    async with runtime(app).engine.connect() as conn:
        return set((await conn.scalars(select(support_events.c.event_id))).all())


async def outbox_count(app: FastAPI) -> int:
    async with runtime(app).engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)


def support_body(team_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "team_id": str(team_id),
        "occurred_on": "2024-05-20",
        "category": "vneid",
        "residents_helped": 12,
    }
    return body | overrides


async def equals(value: Awaitable[Any], expected: Any) -> bool:
    """A wait_until probe: the awaited value equals `expected`."""
    return bool(await value == expected)
