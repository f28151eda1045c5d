"""The aggregator's HTTP side as a real process fed straight from the streams: errors, CSV, SSE."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.contracts.events import TeamCreated
from shared.contracts.events.activity import OUTCOME_KINDS, Outcomes
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess, Stack
from tests.integration.aggregator.test_consumer import publish
from tests.unit.aggregator.fakes import support_recorded, team_event, unit_registered
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

UNITS = [
    unit_registered(("15",), "province", name="Tỉnh Yên Bái"),
    unit_registered(("15", "136"), "district", name="Huyện Văn Yên"),
    unit_registered(("15", "136", "04378"), "commune", name="Xã Lang Thíp"),
    unit_registered(("15", "136", "04378", "04378-001"), "village", name="Thôn Khe Dứa"),
]


@pytest.fixture
async def aggregator(settings: Settings, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    async with Stack(settings, tmp_path) as stack:
        try:
            yield await stack.start("aggregator", env={"CDTT_EDITION": "legacy"})
        finally:
            print(stack.logs())


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.require_redis_url())
    yield client
    await client.aclose()


async def test_errors_name_the_problem(aggregator: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=aggregator.url) as client:
        unknown = await client.get("/v1/coverage/99999")
        children = await client.get("/v1/coverage/99999/children")
        csv_of_unknown = await client.get("/v1/coverage.csv", params={"parent": "99999"})
        bad_edition = await client.get("/v1/coverage", params={"edition": "1975"})

    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "unit_not_found",
        "message": "no unit '99999' in edition legacy",
        "edition": "legacy",
        "unit": "99999",
    }
    assert children.status_code == 404
    assert csv_of_unknown.status_code == 404
    assert bad_edition.status_code == 422
    assert bad_edition.json()["error"]["code"] == "validation_error"


async def test_figures_csv_and_live_events_follow_the_streams(
    aggregator: ServiceProcess, settings: Settings, redis: Redis
) -> None:
    team = uuid.uuid4()
    async with (
        httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client,
        client.stream("GET", "/v1/live", params={"edition": "legacy"}) as live,
    ):
        assert live.headers["content-type"].startswith("text/event-stream")
        lines = live.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        await publish(
            redis,
            settings,
            [
                *UNITS,
                team_event(
                    TeamCreated,
                    team,
                    UNITS[-1].unit_path,
                    "village",
                    version=1,
                    member_count=4,
                    trained=3,
                ),
                support_recorded(
                    team,
                    UNITS[-1].unit_path,
                    residents=6,
                    category="ecommerce",
                    outcomes=Outcomes(ecommerce_accounts=5, payment_accounts=2),
                ),
            ],
        )
        streamed: dict[str, Any] = {}
        async with asyncio.timeout(30):
            while streamed.get("members") != 4 or streamed["support"]["events"] != 1:
                line = await anext(lines)
                if not line.startswith("data: "):
                    continue
                data = json.loads(line.removeprefix("data: "))
                assert data["edition"] == "legacy"
                assert data["codes"] == [u["code"] or "" for u in data["units"]]
                streamed = next((u for u in data["units"] if u["code"] is None), streamed)

        national = (await client.get("/v1/coverage")).json()
        village = (await client.get("/v1/coverage/04378-001")).json()
        exported = await client.get("/v1/coverage.csv")

    assert streamed["teams"] == 1
    assert national["code"] is None
    assert national["level"] == "national"
    assert national["coverage"]["village"] == {"covered": 1, "total": 1}
    assert [p["name"] for p in national["items"]] == ["Tỉnh Yên Bái"]
    assert village["has_team"] is True
    assert (village["members_trained"], village["members_trained_share"]) == (3, 0.75)
    assert national["members_trained"] == 3
    assert village["path"] == ["15", "136", "04378", "04378-001"]
    assert village["coverage"] == {}
    outcomes = dict.fromkeys(OUTCOME_KINDS, 0) | {"ecommerce_accounts": 5, "payment_accounts": 2}
    assert village["support"]["outcomes"] == outcomes
    assert village["support"]["by_category"]["ecommerce"] == {
        "events": 1,
        "residents": 6,
        "outcomes": outcomes,
    }
    assert village["support"]["by_month"]["2024-05"]["outcomes"] == outcomes
    assert village["support"]["by_category"]["vneid"] == {
        "events": 0,
        "residents": 0,
        "outcomes": dict.fromkeys(OUTCOME_KINDS, 0),
    }
    assert national["support"]["outcomes"] == outcomes
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["name"] == "Tỉnh Yên Bái"
    assert (rows[0]["village_covered"], rows[0]["village_total"], rows[0]["teams"]) == (
        "1",
        "1",
        "1",
    )
    assert rows[0]["ecommerce_residents"] == "6"
    assert rows[0]["outcomes_ecommerce_accounts"] == "5"
    assert rows[0]["members_trained"] == "3"
    assert exported.headers["x-lag-ms"].isdigit()


async def test_the_server_stops_gracefully_with_live_streams_open(
    aggregator: ServiceProcess,
) -> None:
    async with (
        httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client,
        client.stream("GET", "/v1/live") as live,
    ):
        lines = live.aiter_lines()
        assert await anext(lines) == "retry: 2000"

        code = await asyncio.to_thread(aggregator.stop, 10)
        rest = [line async for line in lines]

    # uvicorn re-raises SIGTERM once it has shut down; a stream left open would have
    # held it until the harness's SIGKILL.
    assert code in (0, -signal.SIGTERM), aggregator.log_tail()
    assert "Application shutdown complete." in aggregator.log_tail()
    assert rest == [": connected", ""]


async def test_reporting_over_http_rates_null_without_teams_and_refuses_bad_periods(
    aggregator: ServiceProcess, settings: Settings, redis: Redis
) -> None:
    team = uuid.uuid4()
    await publish(
        redis,
        settings,
        [
            *UNITS,
            team_event(
                TeamCreated, team, UNITS[-1].unit_path, "village", version=1, member_count=2
            ),
            support_recorded(team, UNITS[-1].unit_path, day=date(2024, 5, 17)),
        ],
    )
    async with httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client:

        async def communes() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await client.get("/v1/reporting", params={"parent": "136", "period": "2024-05"})
            ).json()
            return body if body.get("items") and body["items"][0]["reporting_teams"] == 1 else None

        may = await wait_until(communes, message="the team reporting in May")
        june = (
            await client.get("/v1/reporting", params={"parent": "04378", "period": "2024-06"})
        ).json()
        bad = await client.get("/v1/reporting", params={"parent": "136", "period": "2024-13"})
        unknown = await client.get("/v1/reporting", params={"parent": "99999", "period": "2024-05"})

    (commune,) = may["items"]
    assert (commune["code"], commune["reporting_teams"], commune["reporting_rate"]) == (
        "04378",
        1,
        1.0,
    )
    assert commune["silent"] == []
    (village,) = june["items"]
    assert (village["reporting_rate"], village["silent_teams"]) == (0.0, 1)
    assert village["silent"] == [{"team_id": str(team), "unit_code": "04378-001"}]
    assert bad.status_code == 422
    assert unknown.status_code == 404
