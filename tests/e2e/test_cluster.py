"""The registry → aggregator flow on a 3-master Redis Cluster, streams in 4 partitions, two
aggregator processes in one group: `cdtt demo` gives the 2022 report's figures on both,
and `cdtt check` finds them equal to the producers' own recount.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.streams import REGISTRY_EVENTS, StreamLayout
from shared.messaging.connection import redis_client
from shared.runtime.settings import Settings
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

AGGREGATORS = ("aggregator", "aggregator-2")


@pytest.fixture
async def cluster_stack(cluster_settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with Stack(cluster_settings, tmp_path) as running:
        try:
            await running.migrate()
            await running.start("registry")
            await running.start("activity")
            for name in AGGREGATORS:
                await running.start("aggregator", name=name)
            yield running
        finally:
            print(running.logs(), file=sys.stderr)


async def figures(stack: Stack, aggregator: str, code: str) -> dict[str, Any]:
    async with stack.client(aggregator) as client:
        response = await client.get(f"/v1/coverage/{code}", params={"edition": "legacy"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_demo_on_a_cluster_with_partitions_and_two_aggregators(
    cluster_stack: Stack,
) -> None:
    stack = cluster_stack
    load = await stack.cdtt(
        "units", "load", "--edition", "legacy", "--province", "15", "--province", "49"
    )
    assert load.returncode == 0, load.stderr
    urls = [f"--{name}-url={stack[name].url}" for name in ("registry", "activity", "aggregator")]
    demo = await stack.cdtt(
        "demo", *urls, "--province", "15", "--province", "49", env={"COLUMNS": "200"},
        limit_seconds=480,
    )  # fmt: skip
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}\n{stack.logs()}"

    for aggregator in AGGREGATORS:  # one set of figures, whichever process answers
        yen_bai = await figures(stack, aggregator, "15")
        assert yen_bai["coverage"]["district"] == {"covered": 1, "total": 9}
        assert yen_bai["coverage"]["village"] == {"covered": 172, "total": 172}
        assert yen_bai["members"] == 1287
        assert yen_bai["teams"] == 1 + 25 + 172
        assert (await figures(stack, aggregator, "136"))["coverage"]["commune"] == {
            "covered": 25,
            "total": 25,
        }
        assert (await figures(stack, aggregator, "49"))["teams"] == 376

    check = await stack.cdtt("check", "--wait", "60", limit_seconds=180)
    assert check.returncode == 0, f"{check.stdout}\n{check.stderr}"

    # Yên Bái (15 % 4 = 3) and Quảng Nam (49 % 4 = 1) went to their own partitions only.
    settings = stack.settings
    layout = StreamLayout(settings.stream_namespace, settings.stream_partitions, cluster=True)
    redis = redis_client(settings.require_redis_url(), cluster=True)
    try:
        lengths = [await redis.xlen(key) for key in layout.keys(REGISTRY_EVENTS)]
    finally:
        await redis.aclose()
    assert [length > 0 for length in lengths] == [False, True, False, True]
