"""Registry changes reach registry.events.v1: whole team state, versions one apart, plain JSON."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contracts.events import decode_event
from shared.contracts.events.registry import (
    TEAM_SCHEMA_VERSION,
    MemberState,
    TeamCreated,
    TeamDissolved,
    TeamMembersChanged,
    TeamState,
    UnitRegistered,
    UnitState,
)
from shared.runtime.settings import Settings
from tests.factories import (
    LEGACY_COMMUNE,
    LEGACY_DISTRICT,
    LEGACY_PROVINCE,
    member_body,
    team_body,
    village_body,
)
from tests.integration.registry.observe import created, outbox_types, stream_envelopes
from tests.waiting import wait_until

TEAM_TYPES = ("team.created", "team.members_changed", "team.dissolved")


async def team_envelopes(redis: Redis, settings: Settings, count: int) -> list[dict[str, Any]]:
    """The first `count` team events on the stream, waiting for the relay to send them."""

    async def arrived() -> list[dict[str, Any]]:
        found = [e for e in await stream_envelopes(redis, settings) if e["type"] in TEAM_TYPES]
        return found if len(found) >= count else []

    return await wait_until(arrived, timeout=10, message=f"{count} team events on the stream")


def expected_state(team: dict[str, Any]) -> TeamState:
    """The contract state of a team as the HTTP API shows it (phones stay in the registry)."""
    return TeamState(
        team_id=uuid.UUID(team["team_id"]),
        unit_code=team["unit_code"],
        unit_level=team["unit_level"],
        name=team["name"],
        established_on=team["established_on"],
        status=team["status"],
        dissolved_on=team["dissolved_on"],
        version=team["version"],
        members=tuple(member_state(m) for m in team["members"]),
        former_members=tuple(member_state(m) for m in team["former_members"]),
    )


def member_state(member: dict[str, Any]) -> MemberState:
    return MemberState(
        member_id=uuid.UUID(member["member_id"]),
        full_name=member["full_name"],
        role=member["role"],
        trained_on=member["trained_on"],
        joined_on=member["joined_on"],
        left_on=member["left_on"],
    )


async def test_team_events_carry_the_whole_state_and_a_growing_version(
    client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    members = [member_body(role="leader", phone="0912345678"), member_body(), member_body()]
    team = created(await client.post("/v1/teams", json=team_body(members=members)))
    path = f"/v1/teams/{team['team_id']}"
    states = [team]
    created(await client.post(f"{path}/members", json=member_body(full_name="Sùng A Dình")))
    states.append((await client.get(path)).json())
    removed = await client.delete(f"{path}/members/{team['members'][1]['member_id']}")
    assert removed.status_code == 204
    states.append((await client.get(path)).json())
    states.append((await client.post(f"{path}/dissolve")).json())

    envelopes = await team_envelopes(redis, settings, 4)
    events = [decode_event(json.dumps(e)) for e in envelopes]
    assert [type(e) for e in events] == [
        TeamCreated,
        TeamMembersChanged,
        TeamMembersChanged,
        TeamDissolved,
    ]
    assert [e.payload for e in events] == [expected_state(s) for s in states]
    assert [e.payload.version for e in events] == [1, 2, 3, 4]  # type: ignore[union-attr]
    for envelope in envelopes:
        assert envelope["unit_path"] == [LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE]
        assert (envelope["edition"], envelope["producer"], envelope["schema_version"]) == (
            "legacy",
            "registry",
            TEAM_SCHEMA_VERSION,
        )
        assert "phone" not in str(envelope["payload"])
    assert len({e.event_id for e in events}) == 4


async def test_a_plain_redis_client_reads_entries_equal_to_the_contract(
    client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    """No framework: XRANGE, one `envelope` field, JSON that validates as the contract model."""
    team = created(await client.post("/v1/teams", json=team_body()))
    (envelope,) = await team_envelopes(redis, settings, 1)
    model = TeamCreated.model_validate(envelope)
    assert model.payload == expected_state(team)
    assert model.model_dump(mode="json") == envelope

    entries: Any = await redis.xrange(f"{settings.stream_namespace}registry.events.v1")
    raw = next(fields for _, fields in entries if b"team.created" in fields[b"envelope"])
    assert list(raw) == [b"envelope"]
    assert team["members"][0]["full_name"].encode() in raw[b"envelope"]


async def test_a_village_emits_unit_registered_with_its_path(
    client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    village = created(await client.post("/v1/units", json=village_body(name="Bản Phìn Hồ")))

    async def sent() -> list[dict[str, Any]]:
        return [
            e
            for e in await stream_envelopes(redis, settings)
            if e["type"] == "unit.registered" and e["unit_path"][-1] == village["code"]
        ]

    (envelope,) = await wait_until(sent, timeout=10, message="village event")
    event = UnitRegistered.model_validate(envelope)
    assert event.unit_path == (LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE, village["code"])
    assert event.payload == UnitState(
        code=village["code"],
        name="Bản Phìn Hồ",
        level="village",
        kind="thôn",
        parent_code=LEGACY_COMMUNE,
    )


async def test_refused_writes_queue_no_event(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    created(await client.post("/v1/teams", json=team_body()))
    before = await outbox_types(engine)
    assert (await client.post("/v1/teams", json=team_body())).status_code == 409
    unknown_parent = await client.post("/v1/units", json=village_body(parent_code="99999"))
    assert unknown_parent.status_code == 422
    assert await outbox_types(engine) == before
