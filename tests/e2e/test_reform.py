"""The 2022 Yên Bái reports read on the 2025 map: every team of legacy Yên Bái (15) counted in
the new Lào Cai (15), Văn Yên's commune teams on the communes theirs merged into, its village
teams on villages carried under those communes, nothing left waiting, their support counted
with them, `cdtt check` clean."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def read(stack: Stack, service: str, path: str, **params: str) -> dict[str, Any]:
    async with stack.client(service) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_yen_bai_2022_on_the_2025_map(stack: Stack) -> None:
    for edition in ("legacy", "2025"):
        load = await stack.cdtt("units", "load", "--edition", edition, "--province", "15")
        assert load.returncode == 0, load.stderr
    urls = [f"--{name}-url={stack[name].url}" for name in ("registry", "activity", "aggregator")]
    demo = await stack.cdtt("demo", *urls, "--province", "15", limit_seconds=480)
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}\n{stack.logs()}"

    van_yen = await read(stack, "registry", "/v1/units", parent="136", edition="legacy")
    communes = [u["code"] for u in van_yen["items"] if u["level"] == "commune"]
    assert len(communes) == 25
    successors = set()
    for code in communes:
        found = await read(stack, "registry", f"/v1/units/{code}/successors", edition="legacy")
        assert len(found["items"]) == 1, (code, found)
        successors.add(found["items"][0]["code"])
    assert len(successors) == 9

    async def lao_cai() -> dict[str, Any]:
        return await read(stack, "aggregator", "/v1/coverage/15", edition="2025")

    async def all_counted() -> dict[str, Any] | None:
        body = await lao_cai()
        return body if body["teams"] == 198 else None

    province = await wait_until(all_counted, timeout=60, message="Lào Cai's 198 teams in 2025")
    assert (province["teams"], province["members"]) == (198, 1287)
    assert province["unplaced"] == {"teams": 0, "members": 0}
    assert province["coverage"]["commune"]["covered"] == 9
    assert province["coverage"]["village"] == {"covered": 172, "total": 172}
    villages = 0
    for code in sorted(successors):
        commune = await read(stack, "aggregator", f"/v1/coverage/{code}", edition="2025")
        assert commune["has_team"], code
        villages += commune["coverage"]["village"]["covered"]
    assert villages == 172
    national = await read(stack, "aggregator", "/v1/coverage", edition="2025")
    assert national["unplaced"] == {"teams": 0, "members": 0}

    check = await stack.cdtt("check", "--wait", "30")
    assert check.returncode == 0, check.stdout + check.stderr
    # Their support too: every event recorded on legacy Yên Bái counts in the new Lào Cai
    # (the demo registers no team on the 2025 map), by category and month alike.
    yen_bai = await read(stack, "aggregator", "/v1/coverage/15", edition="legacy")
    assert yen_bai["support"]["events"] > 0
    assert (await lao_cai())["support"] == yen_bai["support"]
