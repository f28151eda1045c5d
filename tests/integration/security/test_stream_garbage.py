"""Garbage XADDed straight into both streams, against the real consumers (aggregator, activity).

Every undecodable entry must land in the dead-letter stream of each group that reads it,
the consumers must keep going (a valid event sent after the garbage is applied), and no
figure or directory row may change.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from services.activity.bootstrap import create_app as create_activity
from services.aggregator.bootstrap import create_app as create_aggregator
from shared.contracts.events import (
    PoisonEntryError,
    SupportRecorded,
    TeamCreated,
    UnitRegistered,
    decode_entry,
    entry_fields,
)
from shared.contracts.events.activity import SupportState
from shared.contracts.events.registry import MemberState, TeamState, UnitState
from shared.contracts.streams import ACTIVITY_EVENTS, REGISTRY_EVENTS, dead_letter_key, stream_key
from shared.runtime.settings import Settings
from tests.integration.activity.harness import directory_version
from tests.unit.security.garbage import entries
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LEGACY = {"edition": "legacy"}
_villages = itertools.count(1)


def poisonous(fields: dict[str, Any]) -> bool:
    as_redis = {
        k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()
    }
    try:
        decode_entry(as_redis)
    except PoisonEntryError:
        return True
    return False


garbage = st.lists(entries.filter(poisonous), min_size=1, max_size=6)


def unit(path: tuple[str, ...], level: str, name: str) -> UnitRegistered:
    state = UnitState(
        code=path[-1],
        name=name,
        level=level,  # type: ignore[arg-type]
        kind=level,
        parent_code=path[-2] if len(path) > 1 else None,
    )
    return UnitRegistered.new(edition="legacy", unit_path=path, payload=state)


def team(path: tuple[str, ...]) -> TeamCreated:
    state = TeamState(
        team_id=uuid.uuid4(),
        unit_code=path[-1],
        unit_level="village",
        status="active",
        version=1,
        members=(MemberState(member_id=uuid.uuid4(), full_name="Lò Thị Mai", role="leader"),),
    )
    return TeamCreated.new(edition="legacy", unit_path=path, payload=state)


def support(created: TeamCreated) -> SupportRecorded:
    state = SupportState(
        team_id=created.payload.team_id,
        unit_code=created.payload.unit_code,
        occurred_on=date(2024, 5, 20),
        category="vneid",
        residents_helped=3,
    )
    return SupportRecorded.new(edition="legacy", unit_path=created.unit_path, payload=state)


@pytest.fixture
async def consumers(settings: Settings) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    fast = settings.model_copy(update={"reclaim_idle_ms": 300})
    activity, aggregator = create_activity(fast), create_aggregator(fast)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(activity.router.lifespan_context(activity))
        await stack.enter_async_context(aggregator.router.lifespan_context(aggregator))
        yield activity, aggregator


async def dead_letters(redis: Redis, settings: Settings, stream: str, group: str) -> int:
    entries_: Any = await redis.xrange(dead_letter_key(stream, settings.stream_namespace))
    return sum(1 for _, fields in entries_ if fields.get(b"group") == group.encode())


async def xadd(redis: Redis, settings: Settings, stream: str, fields: dict[str, Any]) -> None:
    await redis.xadd(stream_key(stream, settings.stream_namespace), fields)  # type: ignore[arg-type]


def figures(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("as_of", "lag_ms")}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(registry_garbage=garbage, activity_garbage=garbage)
async def test_garbage_is_dead_lettered_and_changes_nothing(
    consumers: tuple[FastAPI, FastAPI],
    redis: Redis,
    settings: Settings,
    registry_garbage: list[dict[str, Any]],
    activity_garbage: list[dict[str, Any]],
) -> None:
    activity, aggregator = consumers
    transport = httpx.ASGITransport(app=aggregator)
    async with httpx.AsyncClient(transport=transport, base_url="http://aggregator") as http:

        async def coverage(code: str) -> dict[str, Any] | None:
            response = await http.get(f"/v1/coverage/{code}", params=LEGACY)
            return response.json() if response.status_code == 200 else None

        if await coverage("20") is None:  # the first example lays down the baseline
            lang_thip = ("15", "136", "04378", "04378-001")
            baseline_team = team(lang_thip)
            for event in (
                unit(("15",), "province", "Tỉnh Yên Bái"),
                unit(("15", "136"), "district", "Huyện Văn Yên"),
                unit(("15", "136", "04378"), "commune", "Xã Lang Thíp"),
                unit(lang_thip, "village", "Thôn Khe Lóng"),
                unit(("20",), "province", "Tỉnh Lạng Sơn"),
                unit(("20", "178"), "district", "Huyện Văn Quan"),
                unit(("20", "178", "06280"), "commune", "Xã Tràng Các"),
                baseline_team,
            ):
                await xadd(redis, settings, REGISTRY_EVENTS, entry_fields(event))
            await xadd(redis, settings, ACTIVITY_EVENTS, entry_fields(support(baseline_team)))

            async def baseline_in() -> bool:
                found = await coverage("15")
                seen = await coverage("20")
                return bool(found and seen and found["support"]["events"] == 1)

            await wait_until(baseline_in, message="baseline in the aggregator")
            await wait_until(lambda: directory_version(activity, baseline_team.payload.team_id))

        before_15 = figures(await coverage("15") or {})
        before_20 = await coverage("20") or {}
        dead_before = {
            (stream, group): await dead_letters(redis, settings, stream, group)
            for stream, group in (
                (REGISTRY_EVENTS, "aggregator"),
                (REGISTRY_EVENTS, "activity"),
                (ACTIVITY_EVENTS, "aggregator"),
            )
        }

        for fields in registry_garbage:
            await xadd(redis, settings, REGISTRY_EVENTS, fields)
        for fields in activity_garbage:
            await xadd(redis, settings, ACTIVITY_EVENTS, fields)
        # Valid events after the garbage: applied only if the consumers kept going.
        village = ("20", "178", "06280", f"06280-{next(_villages):03d}")
        sentinel = team(village)
        await xadd(
            redis, settings, REGISTRY_EVENTS, entry_fields(unit(village, "village", "Bản Nà"))
        )
        await xadd(redis, settings, REGISTRY_EVENTS, entry_fields(sentinel))
        await xadd(redis, settings, ACTIVITY_EVENTS, entry_fields(support(sentinel)))

        async def sentinels_applied() -> bool:
            seen = await coverage("20") or {}
            events = seen.get("support", {}).get("events", 0)
            in_directory = await directory_version(activity, sentinel.payload.team_id)
            return events == before_20["support"]["events"] + 1 and in_directory == 1

        await wait_until(sentinels_applied, timeout=20, message="events after the garbage")
        assert figures(await coverage("15") or {}) == before_15
        expected = {
            (REGISTRY_EVENTS, "aggregator"): len(registry_garbage),
            (REGISTRY_EVENTS, "activity"): len(registry_garbage),
            (ACTIVITY_EVENTS, "aggregator"): len(activity_garbage),
        }
        for (stream, group), added in expected.items():
            after = await dead_letters(redis, settings, stream, group)
            assert after - dead_before[(stream, group)] == added, (stream, group)
        assert activity.state.team_directory.healthy()
        assert aggregator.state.runtime.consumer.healthy()
