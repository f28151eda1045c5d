"""`cdtt demo` against running services: the aggregator's figures are the 2022 report's.

Yên Bái: 1/9 districts, 25/25 communes of Văn Yên, 172 villages, 1,287 members; Quảng Nam
376 teams; Lạng Sơn 1,680; and a second run changes nothing (idempotency keys).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from cdtt.demo.provincial import Api, fetch_tree
from cdtt.demo.report2022 import REPORTED_ON, REPORTS_BY_PROVINCE, plan_province
from shared.contracts.streams import STREAMS, stream_key
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def figures(stack: Stack, code: str, as_of: date | None = None) -> dict[str, Any]:
    params = {"edition": "legacy"} | ({} if as_of is None else {"as_of": as_of.isoformat()})
    async with stack.client("aggregator") as aggregator:
        response = await aggregator.get(f"/v1/coverage/{code}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stream_lengths(stack: Stack) -> list[int]:
    redis = Redis.from_url(stack.settings.require_redis_url())
    try:
        namespace = stack.settings.stream_namespace
        return [await redis.xlen(stream_key(stream, namespace)) for stream in STREAMS]
    finally:
        await redis.aclose()


def counts(body: dict[str, Any]) -> tuple[Any, ...]:
    """What a replay may change: coverage, teams, members, support (not as_of or lag)."""
    return body["coverage"], body["teams"], body["members"], body["support"]


async def demo(stack: Stack, *provinces: str) -> str:
    urls = [f"--{name}-url={stack[name].url}" for name in ("registry", "activity", "aggregator")]
    args = [arg for code in provinces for arg in ("--province", code)]
    result = await stack.cdtt("demo", *urls, *args, env={"COLUMNS": "200"}, limit_seconds=480)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{stack.logs()}"
    return result.stdout


async def test_demo_replays_the_2022_reports_and_a_second_run_changes_nothing(
    stack: Stack,
) -> None:
    load = await stack.cdtt(
        "units", "load", "--edition", "legacy", "--province", "15", "--province", "49",
        "--province", "20",
    )  # fmt: skip
    assert load.returncode == 0, load.stderr

    first = await demo(stack)

    assert "villages 1772 new + 0 already there, teams 2254 new + 0 already there" in first
    assert "2022 report vs the aggregator as of the report's day" in first
    assert "Lạng Sơn: growth by month" in first
    assert "2021-07" in first
    # The report's figures, as of the article's day (every team is dated on or before it).
    for as_of in (REPORTED_ON, None):
        yen_bai, van_yen = await figures(stack, "15", as_of), await figures(stack, "136", as_of)
        assert yen_bai["coverage"]["district"] == {"covered": 1, "total": 9}
        assert van_yen["coverage"]["commune"] == {"covered": 25, "total": 25}
        assert yen_bai["coverage"]["village"] == {"covered": 172, "total": 172}
        assert yen_bai["members"] == 1287
        assert yen_bai["teams"] == 1 + 25 + 172
        quang_nam, lang_son = await figures(stack, "49", as_of), await figures(stack, "20", as_of)
        assert quang_nam["teams"] == 376
        assert {level: share["covered"] > 0 for level, share in quang_nam["coverage"].items()} == {
            "district": True,
            "commune": True,
            "village": True,
        }
        assert lang_son["teams"] == 1680
    # Before 2022 only Lạng Sơn had teams (from July 2021 on).
    new_year = date(2022, 1, 1) - timedelta(days=1)
    assert (await figures(stack, "15", new_year))["teams"] == 0
    assert 0 < (await figures(stack, "20", new_year))["teams"] < 1680
    yen_bai = await figures(stack, "15")

    # Every planned support event was counted once (the same plan the demo sent).
    async with httpx.AsyncClient(timeout=10) as client:
        api = Api(client, {"registry": stack["registry"].url}, limit=8)
        tree = await fetch_tree(api, "15")
    plan = plan_province(REPORTS_BY_PROVINCE["15"], tree)
    assert yen_bai["support"]["events"] == len(plan.support)
    assert yen_bai["support"]["residents"] == sum(s.residents_helped for s in plan.support)
    # Outcomes, training and the province's target, as planned.
    activations = sum(s.outcomes.get("vneid_activations", 0) for s in plan.support)
    assert yen_bai["support"]["outcomes"]["vneid_activations"] == activations
    trained = sum(day is not None for team in plan.teams for day in team.trained_on)
    assert yen_bai["members_trained"] == trained
    parts = {part["figure"]: part for part in yen_bai["targets"]}
    assert (
        parts["outcomes.vneid_activations"]["target"]
        == (
            plan.target()["outcomes"]["vneid_activations"]  # type: ignore[index]
        )
    )
    assert parts["covered_pct.village"]["progress"] == round(100 / 90, 4)
    assert {part["due"] for part in parts.values()} == {"2022-11-30"}

    before = {
        (code, day): counts(await figures(stack, code, day))
        for code in ("15", "136", "49", "20")
        for day in (REPORTED_ON, None)
    }
    events_before = await stream_lengths(stack)
    again = await demo(stack, "15")

    assert "villages 0 new + 172 already there, teams 0 new + 198 already there" in again
    assert await stream_lengths(stack) == events_before  # not one event more on either stream
    after = {
        (code, day): counts(await figures(stack, code, day))
        for code in ("15", "136", "49", "20")
        for day in (REPORTED_ON, None)
    }
    assert after == before
