"""The aggregator's HTTP side as a real process fed straight from the streams: errors, CSV, SSE."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.contracts.events import TeamCreated, TeamDissolved
from shared.contracts.events.activity import OUTCOME_KINDS, Outcomes
from shared.contracts.events.registry import MemberState, Placement, TeamState
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess
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


async def test_figures_as_of_a_day_and_monthly_series_in_both_editions(
    aggregator: ServiceProcess, settings: Settings, redis: Redis
) -> None:
    team = uuid.uuid4()
    village = UNITS[-1].unit_path
    state = TeamState(
        team_id=team,
        unit_code=village[-1],
        unit_level="village",
        status="dissolved",
        established_on=date(2023, 3, 1),
        dissolved_on=date(2023, 7, 20),
        version=2,
        members=tuple(
            MemberState(
                member_id=uuid.uuid4(),
                full_name="Thành viên",
                role="member",
                joined_on=date(2023, 3, 1),
            )
            for _ in range(3)
        ),
        placements=(Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune"),),
    )
    await publish(
        redis,
        settings,
        [
            *UNITS,
            unit_registered(("15",), "province", edition="2025"),
            unit_registered(("15", "04381"), "commune", edition="2025"),
            TeamDissolved.new(edition="legacy", unit_path=village, payload=state),
            support_recorded(team, village, residents=5, day=date(2023, 4, 2)),
        ],
    )
    async with httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client:

        async def national_teams(day: str, edition: str = "legacy") -> Any:
            answer = await client.get("/v1/coverage", params={"as_of": day, "edition": edition})
            return answer.json()

        async def supported() -> bool:
            return bool((await national_teams("2023-04-02"))["support"]["events"] == 1)

        await wait_until(supported, timeout=30)
        national = await national_teams("2023-04-02")
        live = (await client.get("/v1/coverage")).json()
        before = (await client.get("/v1/coverage/15", params={"as_of": "2023-02-28"})).json()
        children = (
            await client.get("/v1/coverage/04378/children", params={"as_of": "2023-07-19"})
        ).json()
        on_2025 = await national_teams("2023-07-19", "2025")
        csv_text = (
            await client.get("/v1/coverage.csv", params={"parent": "04378", "as_of": "2023-07-20"})
        ).text
        series = (
            await client.get("/v1/coverage/15/series", params={"from": "2023-02", "to": "2023-08"})
        ).json()
        series_2025 = (
            await client.get(
                "/v1/coverage/series",
                params={"from": "2023-06", "to": "2023-07", "edition": "2025"},
            )
        ).json()
        too_early = await client.get("/v1/coverage", params={"as_of": "2019-12-31"})
        future = await client.get("/v1/coverage", params={"as_of": "2999-01-01"})
        malformed = await client.get("/v1/coverage", params={"as_of": "2023-02-30"})
        future_month = await client.get(
            "/v1/coverage/series", params={"from": "2030-01", "to": "2031-01"}
        )
        reversed_period = await client.get(
            "/v1/coverage/series", params={"from": "2023-05", "to": "2023-04"}
        )
        eleven_years = await client.get(
            "/v1/coverage/series", params={"from": "2020-01", "to": "2030-01"}
        )

    assert national["as_of_date"] == "2023-04-02"
    assert (national["teams"], national["members"], national["coverage"]["village"]["covered"]) == (
        1,
        3,
        1,
    )
    assert (live["teams"], live["as_of_date"]) == (0, None)
    assert (before["teams"], before["support"]["events"]) == (0, 0)
    assert [(c["code"], c["has_team"], c["teams"]) for c in children["items"]] == [
        ("04378-001", True, 1)
    ]
    assert children["as_of_date"] == "2023-07-19"
    assert (on_2025["teams"], on_2025["coverage"]["commune"]["covered"]) == (1, 1)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [(r["code"], r["has_team"], r["teams"]) for r in rows] == [("04378-001", "no", "0")]
    assert [(m["month"], m["teams"], m["change"]["teams"]) for m in series["months"]] == [
        ("2023-02", 0, 0),
        ("2023-03", 1, 1),
        ("2023-04", 1, 0),
        ("2023-05", 1, 0),
        ("2023-06", 1, 0),
        ("2023-07", 0, -1),
        ("2023-08", 0, 0),
    ]
    april = series["months"][2]
    assert (april["support"]["events"], april["change"]["support_events"]) == (1, 1)
    assert series["months"][1]["coverage"]["village"] == {"covered": 1, "total": 1}
    assert series["months"][1]["change"]["coverage"] == {"district": 0, "commune": 0, "village": 1}
    assert [(m["month"], m["coverage"]["commune"]["covered"]) for m in series_2025["months"]] == [
        ("2023-06", 1),
        ("2023-07", 0),
    ]
    assert too_early.status_code == 422
    assert too_early.json()["error"]["code"] == "date_before_earliest"
    assert future.status_code == 422
    assert future.json()["error"]["code"] == "date_in_future"
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "validation_error"
    assert future_month.json()["error"]["code"] == "date_in_future"
    assert reversed_period.json()["error"]["code"] == "invalid_period"
    assert eleven_years.status_code == 422
    assert eleven_years.json()["error"]["code"] == "too_many_months"
