"""Item 3: activity ingest: single-event POST vs a minimal FastAPI INSERT endpoint; batch vs single.

A real `cdtt serve activity` (auth off, its relay publishing meanwhile, its team
directory fed with team.created entries on registry.events.v1) and the minimal app of
bench/minimal_app.py run side by side. Per run, in alternating order, each gets the same
number of single-event POSTs from the same number of keep-alive connections (closed
loop); then activity gets the same number of events as batches of 1,000. (This folds in
bench/ingest_quick.py.)
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bench.harness import (
    ItemResult,
    Paired,
    Process,
    Row,
    Scratch,
    cdtt_serve,
    fmt_ms,
    fmt_rate,
    free_port,
    median,
    percentile,
    rate,
    server,
    service_env,
)
from bench.loadgen import Connection, closed_loop, post
from bench.minimal_app import CREATE_TABLE
from bench.traffic import Team, fill, hierarchy, registry_key, team_envelopes
from shared.contracts.events.activity import CATEGORIES
from shared.runtime.settings import Settings, libpq_url

SINGLE = "/v1/support-events"
BATCH = "/v1/support-events:batch"
BATCH_SIZE = 1_000
CONCURRENCY = 16
BATCH_CONCURRENCY = 2


def event_body(rng: random.Random, team: Team) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "team_id": str(team.team_id),
        "occurred_on": (date(2025, 1, 1) + timedelta(days=rng.randrange(300))).isoformat(),
        "category": rng.choice(CATEGORIES),
        "residents_helped": rng.randint(1, 40),
    }


async def wait_for_directory(activity: Process, team: Team) -> None:
    """Until activity accepts an event for the last team fed (its directory caught up)."""
    connection = Connection(activity.base_url)
    rng = random.Random(0)
    deadline = time.monotonic() + 60
    try:
        while True:
            status, body = await connection.send(
                post(activity.base_url, SINGLE, event_body(rng, team))
            )
            if status == 202:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"team directory not fed: {status} {body[:200]!r}")
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


def minimal_server(settings: Settings) -> Any:
    port = free_port()
    argv = [
        sys.executable,
        *("-m", "uvicorn", "bench.minimal_app:create_app", "--factory"),
        *("--port", str(port), "--log-level", "warning", "--no-access-log"),
    ]
    dsn = libpq_url(settings.database_url_for("activity"))
    env = service_env(settings, BENCH_MINIMAL_DSN=dsn)
    return server("minimal", argv, env, port, "/healthz")


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    requests, runs = (600, 3) if quick else (2_000, 5)
    batch_events = 3_000 if quick else 10_000
    tree = hierarchy(1, 5, 10)
    rng = random.Random(7)
    single, p99, cpu_ms = Paired(), Paired(), Paired()
    batch_rates: list[float] = []
    async with scratch.space("ingest") as settings:
        conn = await asyncpg.connect(libpq_url(settings.database_url_for("activity")))
        try:
            await conn.execute(CREATE_TABLE)
        finally:
            await conn.close()
        redis = Redis.from_url(settings.require_redis_url())
        try:
            await fill(redis, registry_key(settings.stream_namespace), team_envelopes(tree))
        finally:
            await redis.aclose()
        async with (
            cdtt_serve("activity", settings) as activity,
            minimal_server(settings) as minimal,
        ):
            await wait_for_directory(activity, tree.teams[-1])
            for run_index in range(runs):
                measured: dict[str, tuple[float, float, float]] = {}
                order = (activity, minimal) if run_index % 2 else (minimal, activity)
                for target in order:
                    bodies = [
                        post(target.base_url, SINGLE, event_body(rng, rng.choice(tree.teams)))
                        for _ in range(requests)
                    ]
                    before = target.cpu_seconds()
                    load = await closed_loop(target.base_url, bodies, CONCURRENCY, 202)
                    measured[target.base_url] = (
                        rate(load.requests, load.seconds),
                        percentile(load.latencies, 99),
                        (target.cpu_seconds() - before) / load.requests * 1000,
                    )
                ours, raw = measured[activity.base_url], measured[minimal.base_url]
                single.add(ours[0], raw[0])
                p99.add(ours[1], raw[1])
                cpu_ms.add(ours[2], raw[2])
                batches = [
                    post(
                        activity.base_url,
                        BATCH,
                        {
                            "events": [
                                event_body(rng, rng.choice(tree.teams)) for _ in range(BATCH_SIZE)
                            ]
                        },
                    )
                    for _ in range(max(1, batch_events // BATCH_SIZE))
                ]
                load = await closed_loop(activity.base_url, batches, BATCH_CONCURRENCY, 200)
                batch_rates.append(rate(load.requests * BATCH_SIZE, load.seconds))
    batch_vs_single = median(batch_rates) / median(single.ours)
    result = ItemResult("3", "Ingest")
    result.rows += [
        Row(
            item="3",
            measure=f"single POST {SINGLE}, requests/s ({CONCURRENCY} connections, "
            f"{requests:,}/run, {runs} pairs)",
            ours=fmt_rate(median(single.ours), "req/s"),
            baseline=fmt_rate(median(single.baseline), "req/s") + " (minimal FastAPI + 1 INSERT)",
            result=f"{single.ratio:.2f}×",
            target="≥ 0.6×",
            met=single.ratio >= 0.6,
            note=f"server CPU per single POST: activity {median(cpu_ms.ours):.2f} ms, minimal "
            f"{median(cpu_ms.baseline):.2f} ms (activity's transaction: team lookup, duplicate "
            "check, insert, outbox row, NOTIFY; then its relay's XADD)",
        ),
        Row(
            item="3",
            measure="single POST p99 latency, same runs",
            ours=fmt_ms(median(p99.ours)),
            baseline=fmt_ms(median(p99.baseline)) + " (minimal)",
            result=f"{p99.ratio:.2f}×",
            target="≤ 2× the minimal's p99",
            met=p99.ratio <= 2,
        ),
        Row(
            item="3",
            measure=f"batch POST {BATCH} ({BATCH_SIZE:,} per request, {BATCH_CONCURRENCY} "
            "connections), events/s vs single",
            ours=fmt_rate(median(batch_rates)),
            baseline=fmt_rate(median(single.ours)) + " (single POSTs)",
            result=f"{batch_vs_single:.1f}×",
            target="≥ 10×",
            met=batch_vs_single >= 10,
        ),
    ]
    result.details = {
        "requests_per_run": requests,
        "single_requests_per_s": single.as_json(),
        "single_p99_s": p99.as_json(),
        "single_cpu_ms_per_request": cpu_ms.as_json(),
        "batch_events_per_s": batch_rates,
    }
    return result
