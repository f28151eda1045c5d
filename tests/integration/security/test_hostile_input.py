"""Hostile requests with a valid key: each gets a 4xx naming the problem, and nothing changes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.activity.bootstrap import create_app as create_activity
from shared.runtime.settings import Settings
from tests.factories import LEGACY_COMMUNE, team_body, village_body
from tests.integration.activity.harness import outbox_count
from tests.integration.registry.observe import outbox_types
from tests.integration.security.conftest import Keys

pytestmark = pytest.mark.integration

NAMES = (
    "'; DROP TABLE registry.units; --",
    "<script>alert(1)</script>",
    "Robert'); DELETE FROM auth.api_keys WHERE ('1'='1",
)


@pytest.fixture
async def activity_client(secured: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_activity(secured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://activity") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def raw(body: str | bytes) -> dict[str, Any]:
    return {"content": body}


async def test_malformed_requests_to_the_registry_are_refused_and_change_nothing(
    registry_client: httpx.AsyncClient, registry_engine: AsyncEngine, keys: Keys
) -> None:
    before = await outbox_types(registry_engine)
    headers = keys.admin.headers | {"Content-Type": "application/json"}
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/teams", raw("{not json")),
        ("POST", "/v1/teams", raw(b'{"unit_code": "\xff\xfe"}')),
        ("POST", "/v1/teams", raw(json.dumps(team_body(members="three")))),
        ("POST", "/v1/teams", raw(json.dumps(team_body(established_on=10**400)))),
        (
            "POST",
            "/v1/teams",
            raw(json.dumps(team_body(members=[{"full_name": "A", "role": "king"}]))),
        ),
        ("POST", "/v1/teams", raw(json.dumps(team_body(name="Tổ\x00\x1b[31m")))),
        ("POST", "/v1/teams", raw(json.dumps(team_body(members=501)))),
        ("POST", "/v1/teams", raw(json.dumps(team_body(edition="1999")))),
        ("POST", "/v1/units", raw(json.dumps(village_body(parent_code="04378' OR '1'='1")))),
        ("POST", "/v1/units", raw(json.dumps(village_body(name="x" * 10_000)))),
        ("POST", "/v1/units", raw("[" * 100_000 + "]" * 100_000)),
        ("GET", "/v1/units/%00", {}),
        ("GET", "/v1/units/15'%20OR%20'1'='1", {}),
        ("GET", "/v1/units?parent=%00", {}),
        ("GET", "/v1/teams?unit=04378%00", {}),
        ("GET", "/v1/teams/not-a-uuid", {}),
        ("DELETE", "/v1/units/15", {}),
    ]
    for method, path, options in attempts:
        response = await registry_client.request(method, path, headers=headers, **options)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text,
        )
        assert response.json()["error"]["code"], response.text
    assert await outbox_types(registry_engine) == before

    # Names with SQL or markup are just names: stored and returned exactly, as data.
    for name in NAMES:
        created = await registry_client.post(
            "/v1/units", json=village_body(name=name), headers=headers
        )
        assert created.status_code == 201, created.text
        read = await registry_client.get(
            f"/v1/units/{created.json()['code']}", params={"edition": "legacy"}, headers=headers
        )
        assert read.json()["name"] == name
    listed = await registry_client.get(
        "/v1/units", params={"parent": LEGACY_COMMUNE, "edition": "legacy"}, headers=headers
    )
    assert {u["name"] for u in listed.json()["items"]} >= set(NAMES)


async def test_a_method_not_allowed_names_every_allowed_method(
    registry_client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await registry_client.request("PUT", "/v1/teams", headers=keys.admin.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


async def test_malformed_support_events_are_refused_and_change_nothing(
    activity_client: httpx.AsyncClient, keys: Keys
) -> None:
    app: FastAPI = activity_client.app  # type: ignore[attr-defined]
    headers = keys.admin.headers | {"Content-Type": "application/json"}
    good = {
        "team_id": "00000000-0000-0000-0000-000000000001",
        "occurred_on": "2024-05-20",
        "category": "vneid",
        "residents_helped": 3,
    }
    singles: list[dict[str, Any]] = [
        raw("{"),
        raw(b"\xc3\x28"),
        raw(json.dumps(good | {"category": "bitcoin_mining"})),
        raw(json.dumps(good | {"residents_helped": 10**30})),
        raw(json.dumps(good | {"residents_helped": "12"})),
        raw(json.dumps(good | {"residents_helped": 1.5})),
        raw(json.dumps(good | {"occurred_on": "2024-02-30"})),
        raw(json.dumps(good | {"team_id": "'; DROP TABLE activity.support_events; --"})),
        raw(json.dumps(good | {"extra": "<script>"})),
        raw(json.dumps([good])),
    ]
    for options in singles:
        response = await activity_client.post("/v1/support-events", headers=headers, **options)
        assert 400 <= response.status_code < 500, (options, response.text)
    oversized = await activity_client.post(
        "/v1/support-events:batch", json={"events": [good] * 1001}, headers=headers
    )
    assert oversized.status_code == 413
    garbage_items = await activity_client.post(
        "/v1/support-events:batch",
        json={"events": [None, 7, "x", [], good | {"category": "?"}, {"team_id": "\u0000"}]},
        headers=headers,
    )
    assert garbage_items.status_code == 200, garbage_items.text
    assert {r["status"] for r in garbage_items.json()["results"]} == {"rejected"}
    assert await outbox_count(app) == 0


async def test_lone_surrogates_and_deep_nesting_are_refused_as_422_json(
    registry_client: httpx.AsyncClient,
    registry_engine: AsyncEngine,
    activity_client: httpx.AsyncClient,
    keys: Keys,
) -> None:
    """Item 7 of #18: both were unhandled 500s in plain text."""
    before = await outbox_types(registry_engine)
    headers = keys.admin.headers | {"Content-Type": "application/json"}
    surrogate = '"Th\\ud800n"'  # JSON escapes for a lone surrogate: valid JSON, invalid text
    attempts = [
        ("/v1/units", village_body(name="@@")),
        ("/v1/teams", team_body(name="@@")),
        ("/v1/teams", team_body(members=[{"full_name": "@@", "role": "leader"}])),
        ("/v1/units", village_body(kind="@@")),
    ]
    for path, body in attempts:
        content = json.dumps(body).replace('"@@"', surrogate)
        response = await registry_client.post(path, content=content, headers=headers)
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.json()["error"]["code"], response.text
    assert await outbox_types(registry_engine) == before

    app: FastAPI = activity_client.app  # type: ignore[attr-defined]
    deep: Any = "x"
    for _ in range(400):
        deep = {"n": deep}
    item = {
        "team_id": "00000000-0000-0000-0000-000000000001",
        "occurred_on": "2024-05-20",
        "category": "vneid",
        "residents_helped": deep,
    }
    nested = await activity_client.post(
        "/v1/support-events:batch", json={"events": [item, [[[[deep]]]]]}, headers=headers
    )
    assert nested.status_code in (200, 422), nested.text
    if nested.status_code == 200:
        assert {r["status"] for r in nested.json()["results"]} == {"rejected"}
    else:
        assert nested.json()["error"]["code"], nested.text
    single = await activity_client.post("/v1/support-events", json=item, headers=headers)
    assert single.status_code == 422, single.text
    surrogate_category = json.dumps(item | {"residents_helped": 3, "category": "@@"})
    refused = await activity_client.post(
        "/v1/support-events", content=surrogate_category.replace('"@@"', surrogate), headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert await outbox_count(app) == 0


async def test_validation_gaps_of_the_review_are_closed(
    registry_client: httpx.AsyncClient, registry_engine: AsyncEngine, keys: Keys
) -> None:
    """Item 8 of #18: a date before 2020, a phone of no digits, invisible characters in names,
    and a team grown past 500 members one addition at a time."""
    headers = keys.admin.headers
    before = await outbox_types(registry_engine)
    refused = [
        team_body(established_on="0001-01-01"),
        team_body(
            members=[{"full_name": "Hoàng Văn Sơn", "role": "leader", "phone": "+0 - - - - ."}]
        ),
        team_body(name="Tổ thôn \u202eőnàL ehK"),
        team_body(members=[{"full_name": "Lò\u200b Văn Sơn", "role": "leader"}]),
    ]
    for body in refused:
        response = await registry_client.post("/v1/teams", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    assert await outbox_types(registry_engine) == before

    full = await registry_client.post("/v1/teams", json=team_body(members=500), headers=headers)
    assert full.status_code == 201, full.text
    team_id = full.json()["team_id"]
    extra = await registry_client.post(
        f"/v1/teams/{team_id}/members",
        json={"full_name": "Thành viên 501", "role": "member"},
        headers=headers,
    )
    assert extra.status_code == 422, extra.text
    assert extra.json()["error"]["code"] == "too_many_members"
    read = await registry_client.get(f"/v1/teams/{team_id}", headers=headers)
    assert len(read.json()["members"]) == 500
