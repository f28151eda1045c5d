"""Item 5: national scale: /v1/coverage reads vs a direct SQL recount, and the services' memory.

The data set (bench/national_load.py) is written straight into the services' tables,
except its last part, which activity's relay and the aggregator's consumer carry as in
production while the three services run. Once the aggregator has applied it all, each
scope (a province, a commune, the nation) is read over HTTP (p99 of a closed loop) and
recounted by SQL over the producers' tables (teams, members, covered/total per level,
support by category and by month: what the endpoint serves; each producer's own recount,
services/<producer>/adapters/recount.py); the two must agree.
Resident memory of each service is sampled every half second throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.harness import (
    ItemResult,
    Process,
    Row,
    Scratch,
    cdtt_serve,
    fmt_ms,
    median,
    percentile,
    rate,
)
from bench.loadgen import Connection, closed_loop, get
from bench.national_load import Scale, load_activity, load_aggregator, load_registry, publish_rest
from services.activity.adapters.recount import recount_scope_support
from services.aggregator.adapters.audit import support_counts
from services.aggregator.domain import NATIONAL
from services.registry.adapters.recount import recount_scope
from shared.contracts.units import Edition
from shared.runtime.db import engine_scope
from shared.runtime.settings import ServiceName, Settings, libpq_url

# Full mode: the national registry and 10 million support events, but the last 200,000
# (not a million) through relay and consumers: at ~2,400 events/s here a million would
# take 7 minutes of the 20. BENCH_NATIONAL_EVENTS / BENCH_NATIONAL_THROUGH_CONSUMERS
# override both (e.g. 10000000 / 1000000 on a machine with time for it).
FULL = Scale(100_000, 100_000, 5, 10_000_000, 200_000)
QUICK = Scale(3_000, 3_000, 5, 60_000, 5_000)
EDITION: Edition = "2025"
PROVINCE, COMMUNE = "01", "00004"  # Hà Nội, and its first ward (Ba Đình)
# One reader: the latency an operator sees, not a queue of concurrent reads.
READS, READ_CONCURRENCY, RECOUNTS = 600, 1, 3


async def recount(
    registry: AsyncConnection, activity: AsyncConnection, code: str, depth: int
) -> dict[str, Any]:
    """The figures of the unit `code` at `depth` in its path ("" : the nation), recounted by
    SQL over the producers' tables (each producer's own recount)."""
    units = await recount_scope(registry, EDITION, code, depth)
    support = await recount_scope_support(activity, EDITION, code, depth)
    return {
        "teams": units.teams,
        "members": units.members,
        "coverage": units.coverage,
        "events": support.events,
        "residents": support.residents,
        "by_category": support.by_category,
        "by_month": support.by_month,
    }


def served(body: dict[str, Any]) -> dict[str, Any]:
    """The same figures from a /v1/coverage answer."""
    support = body["support"]
    return {
        "teams": body["teams"],
        "members": body["members"],
        "coverage": body["coverage"],
        "events": support["events"],
        "residents": support["residents"],
        "by_category": {c: v["events"] for c, v in support["by_category"].items() if v["events"]},
        "by_month": {m: v["events"] for m, v in support["by_month"].items()},
    }


@dataclass
class Memory:
    """Peak resident memory of each service, sampled while the item runs."""

    peak_mb: dict[str, float] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def sampling(self, services: dict[str, Process]) -> AsyncIterator[None]:
        async def sample() -> None:
            while True:
                for name, process in services.items():
                    self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), process.rss_mb())
                await asyncio.sleep(0.5)

        task = asyncio.create_task(sample())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def connected(settings: Settings, service: ServiceName) -> AsyncIterator[AsyncConnection]:
    """A connection to `service`'s own database, opened before any timing starts; each read
    commits on its own (a watcher never sits in an open transaction)."""
    async with (
        engine_scope(settings.database_url_for(service), pool_size=1) as engine,
        engine.connect() as conn,
    ):
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def say(message: str) -> None:
    print(f"  national: {message}", file=sys.stderr, flush=True)


async def wait_applied(aggregator: AsyncConnection, total: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        applied = (await support_counts(aggregator, EDITION, [NATIONAL])).get(NATIONAL, 0)
        if applied == total:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"aggregator applied {applied:,} of {total:,} support events")
        await asyncio.sleep(0.5)


async def read_p99(aggregator: Process, path: str, reads: int) -> tuple[float, dict[str, Any]]:
    requests = [get(aggregator.base_url, path) for _ in range(reads)]
    load = await closed_loop(aggregator.base_url, requests, READ_CONCURRENCY, 200)
    _, body = await _one(aggregator, path)
    return percentile(load.latencies, 99), orjson.loads(body)


async def _one(process: Process, path: str) -> tuple[int, bytes]:
    connection = Connection(process.base_url)
    try:
        return await connection.send(get(process.base_url, path))
    finally:
        await connection.close()


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    scale = QUICK if quick else FULL
    scale = replace(
        scale,
        support_events=int(os.environ.get("BENCH_NATIONAL_EVENTS", scale.support_events)),
        through_consumers=int(
            os.environ.get("BENCH_NATIONAL_THROUGH_CONSUMERS", scale.through_consumers)
        ),
    )
    reads = READS // 3 if quick else READS
    result = ItemResult("5", "National scale")
    memory = Memory()
    timings: dict[str, float] = {}
    async with scratch.space("national") as settings:
        conn = await asyncpg.connect(libpq_url(settings.database_url_for("aggregator")))
        try:
            await conn.execute("SET synchronous_commit = off; SET work_mem = '64MB'")
            started = time.monotonic()
            await load_registry(conn, scale)
            timings["registry_s"] = time.monotonic() - started
            await load_activity(conn, scale, lambda n: say(f"{n:,} support events loaded"))
            timings["activity_s"] = time.monotonic() - started - timings["registry_s"]
            await load_aggregator(conn)
            timings["fast_path_load_s"] = time.monotonic() - started
            say(f"fast path loaded in {timings['fast_path_load_s']:.0f} s")
            async with AsyncExitStack() as stack:
                names: tuple[ServiceName, ...] = ("registry", "activity", "aggregator")
                started_services = await asyncio.gather(
                    *(stack.enter_async_context(cdtt_serve(n, settings)) for n in names)
                )
                services: dict[str, Process] = dict(zip(names, started_services, strict=True))
                await stack.enter_async_context(memory.sampling(services))
                readers = {
                    name: await stack.enter_async_context(connected(settings, name))
                    for name in names
                }
                started = time.monotonic()
                await publish_rest(conn, scale)
                await wait_applied(readers["aggregator"], scale.support_events, within=3_600)
                timings["through_consumers_s"] = time.monotonic() - started
                say(f"the last part applied in {timings['through_consumers_s']:.0f} s")
                aggregator = services["aggregator"]
                scopes = (
                    ("province", PROVINCE, 1, f"/v1/coverage/{PROVINCE}"),
                    ("commune", COMMUNE, 2, f"/v1/coverage/{COMMUNE}"),
                    ("nation", "", 0, "/v1/coverage"),
                )
                for label, code, depth, path in scopes:
                    p99, body = await read_p99(aggregator, path, reads)
                    times, figures = [], {}
                    for _ in range(RECOUNTS):
                        begun = time.perf_counter()
                        figures = await recount(
                            readers["registry"], readers["activity"], code, depth
                        )
                        times.append(time.perf_counter() - begun)
                    agree = figures == served(body)
                    ratio = median(times) / p99
                    result.rows.append(
                        Row(
                            "5",
                            f"/v1/coverage p99, {label} ({path}), {reads} reads, "
                            f"{READ_CONCURRENCY} connections",
                            fmt_ms(p99),
                            fmt_ms(median(times)) + " (SQL recount, median of "
                            f"{RECOUNTS}; figures {'agree' if agree else 'DIFFER'})",
                            f"{ratio:,.1f}× faster",
                            "< 20 ms, ≥ 100× faster",
                            p99 < 0.02 and ratio >= 100 and agree,
                        )
                    )
                    result.details[label] = {
                        "p99_s": p99,
                        "recount_s": times,
                        "agree": agree,
                        "served": served(body),
                        "recounted": figures,
                    }
        finally:
            await conn.close()
    for name, peak in memory.peak_mb.items():
        result.rows.append(
            Row(
                "5",
                f"resident memory, {name} (peak)",
                f"{peak:,.0f} MB",
                "—",
                f"{peak:,.0f} MB",
                "< 300 MB",
                peak < 300,
            )
        )
    applied_rate = rate(scale.through_consumers, timings["through_consumers_s"])
    result.rows[0].note = (
        f"{scale.describe()}; fast path {timings['fast_path_load_s']:.0f} s; the last "
        f"{scale.through_consumers:,} through relay + aggregator consumer in "
        f"{timings['through_consumers_s']:.0f} s ({applied_rate:,.0f} events/s)"
    )
    result.details |= {"scale": scale.__dict__, "timings": timings, "memory_mb": memory.peak_mb}
    return result
