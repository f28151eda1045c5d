"""Aggregators killed mid-batch, or two in one group under load: `cdtt check` finds nothing.

The three services run as real processes (tests/e2e/stack.py). A crash point armed
through CDTT_FAULTS SIGKILLs the aggregator inside its first batch, before or after the
commit; after a restart the reclaimer hands the dead consumer's entries to the new one
and the recount from the producers' tables must match every figure.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from services.aggregator.adapters.tables import processed_events
from shared.contracts.streams import AGGREGATOR_GROUP, REGISTRY_EVENTS, stream_key
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess, Stack
from tests.integration.aggregator.load import steady_load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROVINCE, DISTRICT = "15", "136"


@pytest.fixture
async def producers(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    """Registry and activity running, Yên Bái's units loaded; aggregators left to the test."""
    async with Stack(settings, tmp_path) as stack:
        try:
            await stack.migrate()
            await stack.start("registry")
            await stack.start("activity")
            yield stack
        finally:
            print(stack.logs())


async def load_units(stack: Stack) -> None:
    loaded = await stack.cdtt("units", "load", "--edition", "legacy", "--province", PROVINCE)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr


async def communes_of(registry: httpx.AsyncClient, district: str) -> list[str]:
    answer = await registry.get("/v1/units", params={"parent": district, "edition": "legacy"})
    assert answer.status_code == 200, answer.text
    return [unit["code"] for unit in answer.json()["items"]]


async def check_clean(stack: Stack) -> str:
    checked = await stack.cdtt("check", "--wait", "60", limit_seconds=180)
    assert checked.returncode == 0, f"cdtt check:\n{checked.stdout}\n{checked.stderr}"
    return checked.stdout


async def applied_events(settings: Settings) -> int:
    async with (
        engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine,
        engine.connect() as conn,
    ):
        return int(await conn.scalar(select(func.count()).select_from(processed_events)) or 0)


@pytest.mark.parametrize("point", ["aggregator.before_commit", "aggregator.after_commit"])
async def test_an_aggregator_killed_mid_batch_loses_and_doubles_nothing(
    producers: Stack, settings: Settings, point: str
) -> None:
    doomed = await producers.start("aggregator", env={"CDTT_FAULTS": point})
    await load_units(producers)  # its first batch of unit.registered kills it

    assert await asyncio.to_thread(doomed.wait_exit, 30) == -signal.SIGKILL, doomed.log_tail()
    redis = Redis.from_url(settings.require_redis_url())
    try:
        pending = await redis.xpending(
            stream_key(REGISTRY_EVENTS, settings.stream_namespace), AGGREGATOR_GROUP
        )
    finally:
        await redis.aclose()
    assert pending["pending"] > 0, "the killed batch is left pending for the reclaimer"
    applied = await applied_events(settings)
    if point == "aggregator.before_commit":
        assert applied == 0, "nothing of the killed transaction may be visible"
    else:
        assert applied == pending["pending"], "committed, then killed before the ack"

    # More work arrives while no aggregator runs, then one starts again.
    async with producers.client("registry") as registry, producers.client("activity") as activity:
        communes = await communes_of(registry, DISTRICT)
        await steady_load(registry, activity, communes[:3], seconds=3, workers=2)
    await producers.start("aggregator")

    await check_clean(producers)


async def deadlocks(settings: Settings) -> int:
    async with (
        engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine,
        engine.connect() as conn,
    ):
        found = await conn.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(found or 0)


async def test_two_aggregators_in_one_group_under_load_give_exact_figures(
    producers: Stack, settings: Settings
) -> None:
    deadlocks_before = await deadlocks(settings)
    aggregators = [await producers.start("aggregator", name=f"aggregator-{n}") for n in (1, 2)]
    await load_units(producers)
    lags: list[int] = []
    loading = True

    async def sample_lag(aggregator: ServiceProcess) -> None:
        async with httpx.AsyncClient(base_url=aggregator.url, timeout=5) as client:
            while loading:
                answer = await client.get(f"/v1/coverage/{PROVINCE}", params={"edition": "legacy"})
                assert answer.status_code == 200, answer.text
                lags.append(answer.json()["lag_ms"])
                await asyncio.sleep(0.25)

    async with producers.client("registry") as registry, producers.client("activity") as activity:
        communes = await communes_of(registry, DISTRICT)
        sampler = asyncio.create_task(sample_lag(aggregators[0]))
        started = time.monotonic()
        report = await steady_load(registry, activity, communes, seconds=15, workers=4)
        loading = False
        await sampler
    print(
        f"load: {report.requests} requests in {time.monotonic() - started:.1f}s, "
        f"{len(report.teams)} teams, {report.support_accepted} support events; "
        f"lag_ms median {statistics.median(lags)}, max {max(lags)} ({len(lags)} samples)"
    )
    assert report.support_accepted > 0
    assert len(report.teams) > 10

    result = await check_clean(producers)
    assert "no differences" in result
    assert await deadlocks(settings) == deadlocks_before

    for aggregator in aggregators:
        async with httpx.AsyncClient(base_url=aggregator.url) as client:
            metrics = (await client.get("/metrics")).text
        consumed = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("cdtt_events_consumed_total{") and 'group="aggregator"' in line
        )
        assert consumed > 0, f"{aggregator.name} applied nothing"
        assert aggregator.alive()
