"""Targets through a real aggregator process: `target.set` on the stream reaches the figures."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.contracts.events import TargetSet, TeamCreated
from shared.contracts.events.activity import Outcomes
from shared.contracts.events.registry import TargetState
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess
from tests.integration.aggregator.test_consumer import publish
from tests.integration.aggregator.test_http import UNITS
from tests.unit.aggregator.fakes import support_recorded, team_event
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def target_set(version: int, **parts: Any) -> TargetSet:
    return TargetSet.new(
        edition="legacy",
        unit_path=("15",),
        payload=TargetState(code="15", level="province", version=version, **parts),
    )


async def test_a_target_set_reaches_the_figures_with_progress(
    aggregator: ServiceProcess, settings: Settings, redis: Redis
) -> None:
    team = uuid.uuid4()
    village = UNITS[-1].unit_path
    newest = target_set(
        2,
        due=date(2022, 11, 30),
        covered_pct={"commune": 100, "village": 50},
        members_trained_pct=100,
        outcomes={"vneid_activations": 8},
    )
    await publish(
        redis,
        settings,
        [
            *UNITS,
            team_event(TeamCreated, team, village, "village", version=1, member_count=4, trained=3),
            support_recorded(team, village, residents=5, outcomes=Outcomes(vneid_activations=2)),
            newest,
            # An older version arriving after the newest changes nothing.
            target_set(1, covered_pct={"commune": 10}),
        ],
    )
    async with httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client:

        async def province() -> dict[str, Any] | None:
            body: dict[str, Any] = (await client.get("/v1/coverage/15")).json()
            done = body.get("targets") and body["support"]["events"] == 1
            return body if done else None

        figures = await wait_until(province, timeout=30)
        national = (await client.get("/v1/coverage")).json()
        exported = await client.get("/v1/coverage.csv")
        reported = await client.get(
            "/v1/reporting", params={"parent": "04378", "period": "2024-05", "format": "csv"}
        )

    assert figures["targets"] == [
        {
            "figure": "covered_pct.commune",
            "target": 100.0,
            "actual": 0.0,
            "progress": 0.0,
            "due": "2022-11-30",
        },
        {
            "figure": "covered_pct.village",
            "target": 50.0,
            "actual": 100.0,
            "progress": 2.0,
            "due": "2022-11-30",
        },
        {
            "figure": "members_trained_pct",
            "target": 100.0,
            "actual": 75.0,
            "progress": 0.75,
            "due": "2022-11-30",
        },
        {
            "figure": "outcomes.vneid_activations",
            "target": 8.0,
            "actual": 2.0,
            "progress": 0.25,
            "due": "2022-11-30",
        },
    ]
    assert national["targets"] == []
    (row,) = national["items"]
    assert row["targets"] == figures["targets"]

    (exported_row,) = csv.DictReader(io.StringIO(exported.text, newline=""))
    assert exported_row["members_trained_share"] == "0.75"
    assert exported_row["target_due"] == "2022-11-30"
    assert (
        exported_row["target_covered_pct_village"],
        exported_row["actual_covered_pct_village"],
        exported_row["progress_covered_pct_village"],
    ) == ("50.0", "100.0", "2.0")
    assert exported_row["progress_outcomes_vneid_activations"] == "0.25"
    # Parts without a target are empty cells, not zeros.
    assert exported_row["target_outcomes_payment_accounts"] == ""
    assert exported_row["target_covered_pct_district"] == ""

    assert reported.headers["content-type"].startswith("text/csv")
    assert "reporting-2024-05.csv" in reported.headers["content-disposition"]
    (village_row,) = csv.DictReader(io.StringIO(reported.text, newline=""))
    assert village_row == {
        "edition": "legacy",
        "period": "2024-05",
        "code": "04378-001",
        "name": "Thôn Khe Dứa",
        "level": "village",
        "active_teams": "1",
        "reporting_teams": "1",
        "reporting_rate": "1.0",
        "silent_teams": "0",
        "silent": "",
    }
