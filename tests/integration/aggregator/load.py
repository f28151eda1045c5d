"""A steady mixed load through the producers' HTTP APIs, as provincial systems would send it.

Workers register villages under the given communes, put a team on each, add and remove
members, dissolve some teams and record support in batches, until the deadline. Answers
the rules refuse (a support event for a team the activity has not heard of yet, a team
dissolved meanwhile) are part of the load: they change nothing on either side.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.factories import make_members

CATEGORIES = ("vneid", "public_services", "cashless_payment", "ecommerce", "digital_skills")


@dataclass
class LoadReport:
    requests: int = 0
    refused: int = 0
    support_accepted: int = 0
    teams: list[dict[str, Any]] = field(default_factory=list)


async def _worker(
    registry: httpx.AsyncClient,
    activity: httpx.AsyncClient,
    communes: list[str],
    deadline: float,
    rng: random.Random,
    report: LoadReport,
) -> None:
    async def call(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
        response = await client.request(method, url, **kw)
        report.requests += 1
        if response.status_code >= 500:
            raise AssertionError(f"{method} {url}: {response.status_code} {response.text}")
        if response.status_code >= 400:
            report.refused += 1
        return response

    while time.monotonic() < deadline:
        village = await call(
            registry,
            "POST",
            "/v1/units",
            json={"parent_code": rng.choice(communes), "name": "Thôn Tải", "edition": "legacy"},
        )
        if village.status_code == 201:
            created = await call(
                registry,
                "POST",
                "/v1/teams",
                json={
                    "unit_code": village.json()["code"],
                    "members": make_members(rng.randint(2, 6)),
                    "edition": "legacy",
                },
            )
            if created.status_code == 201:
                report.teams.append(created.json())
        if report.teams and rng.random() < 0.5:
            team_id = rng.choice(report.teams)["team_id"]
            member = {"full_name": "Lò Văn Thêm", "role": "member", "edition": "legacy"}
            await call(registry, "POST", f"/v1/teams/{team_id}/members", json=member)
        if report.teams and rng.random() < 0.4:
            team = rng.choice(report.teams)
            gone = team["members"][-1]["member_id"]
            await call(registry, "DELETE", f"/v1/teams/{team['team_id']}/members/{gone}")
        if report.teams and rng.random() < 0.15:
            team_id = rng.choice(report.teams)["team_id"]
            await call(registry, "POST", f"/v1/teams/{team_id}/dissolve", json={})
        if report.teams:
            events = [
                {
                    "team_id": rng.choice(report.teams)["team_id"],
                    "occurred_on": (
                        date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
                    ).isoformat(),
                    "category": rng.choice(CATEGORIES),
                    "residents_helped": rng.randint(1, 40),
                    "edition": "legacy",
                }
                for _ in range(rng.randint(10, 60))
            ]
            answer = await call(
                activity, "POST", "/v1/support-events:batch", json={"events": events}
            )
            if answer.status_code == 200:
                report.support_accepted += answer.json()["accepted"]


async def steady_load(
    registry: httpx.AsyncClient,
    activity: httpx.AsyncClient,
    communes: list[str],
    *,
    seconds: float,
    workers: int = 4,
    seed: int = 1,
) -> LoadReport:
    report = LoadReport()
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        *(
            _worker(registry, activity, communes, deadline, random.Random(seed + n), report)
            for n in range(workers)
        )
    )
    return report
