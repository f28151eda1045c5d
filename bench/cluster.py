"""Item 7: pipeline throughput on a Redis Cluster (4 partitions), 1 and 2 aggregators, vs one Redis.

Each run: a scratch database; aggregator processes (`cdtt serve aggregator`, as deployed)
started and ready; a hierarchy's unit and team events XADDed and applied first (team
events must find their units); then support events XADDed in one go, each to its
province's partition, and timed until the group "aggregator" has acknowledged every
entry (lag 0). Events/s is support events over that time. The baseline is the same run
with one aggregator on the machine's single Redis, taken in turn with the cluster runs
(same load); the ratios are medians of per-run ratios. The cluster is local: three
`redis-server` masters on this machine's loopback (cdtt/cluster.py), so it measures the
cost of the cluster client and partitions, not more hardware.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

import orjson

from bench import traffic
from bench.harness import ItemResult, Paired, Scratch, cdtt_serve, rate, ratio_row
from cdtt.cluster import local_cluster
from services.aggregator.adapters.lag import lag_ms
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    REGISTRY_EVENTS,
    STREAMS,
    StreamLayout,
)
from shared.messaging.connection import RedisClient, open_streams
from shared.runtime.settings import Settings

PARTITIONS = 4
DRAIN_LIMIT_SECONDS = 300.0


async def fill(
    redis: RedisClient, layout: StreamLayout, stream: str, envelopes: list[bytes]
) -> None:
    """XADD each envelope to its province's partition, 2,000 per pipeline."""
    for chunk in traffic.chunks(envelopes, 2_000):
        async with redis.pipeline(transaction=False) as pipe:
            for envelope in chunk:
                province = orjson.loads(envelope)["unit_path"][0]
                pipe.xadd(layout.key_for(stream, province), {ENVELOPE_FIELD: envelope})
            await pipe.execute()


async def drained(redis: RedisClient, layout: StreamLayout) -> None:
    deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
    while await lag_ms(redis, STREAMS, layout, AGGREGATOR_GROUP) != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained within {DRAIN_LIMIT_SECONDS:.0f} s")
        await _pause()


async def _pause() -> None:
    await asyncio.sleep(0.02)  # the drain probe's polling interval


async def one_run(
    settings: Settings, aggregators: int, registry_events: list[bytes], support: list[bytes]
) -> float:
    """Support events per second through `aggregators` processes on `settings`' Redis."""
    async with AsyncExitStack() as running:
        for _ in range(aggregators):
            await running.enter_async_context(cdtt_serve("aggregator", settings))
        redis, layout = await open_streams(settings)
        try:
            await fill(redis, layout, REGISTRY_EVENTS, registry_events)
            await drained(redis, layout)
            started = time.perf_counter()
            await fill(redis, layout, ACTIVITY_EVENTS, support)
            await drained(redis, layout)
            return rate(len(support), time.perf_counter() - started)
        finally:
            await redis.aclose()


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    runs, count = (1, 10_000) if quick else (3, 20_000)
    tree = traffic.hierarchy(8, 10, 5)
    registry_events = [*traffic.unit_envelopes(tree), *traffic.team_envelopes(tree)]
    support = traffic.support_envelopes(tree, count, seed=7)
    traffic.check_shapes(registry_events, support)
    one, two = Paired(), Paired()
    with local_cluster() as cluster:
        for attempt in range(runs):
            figures: dict[str, float] = {}
            for label, aggregators, on_cluster in (
                ("single", 1, False),
                ("cluster1", 1, True),
                ("cluster2", 2, True),
            ):
                async with scratch.space(f"cluster{attempt}{label}") as base:
                    settings = base
                    if on_cluster:
                        settings = base.model_copy(
                            update={
                                "redis_url": cluster.url,
                                "redis_cluster": True,
                                "stream_partitions": PARTITIONS,
                            }
                        )
                    figures[label] = await one_run(settings, aggregators, registry_events, support)
            one.add(figures["cluster1"], figures["single"])
            two.add(figures["cluster2"], figures["single"])
    details: dict[str, Any] = {
        "support_events": count,
        "partitions": PARTITIONS,
        "cluster_1_aggregator": one.as_json(),
        "cluster_2_aggregators": two.as_json(),
    }
    note = "3 local masters on the same 2 cores; support events, drained to lag 0"
    return ItemResult(
        item="7",
        title="Pipeline on a Redis Cluster (4 partitions) vs one Redis",
        rows=[
            ratio_row(
                "7", "cluster, 1 aggregator", one, "one Redis, 1 aggregator", "report", 0.0, note
            ),
            ratio_row("7", "cluster, 2 aggregators", two, "one Redis, 1 aggregator", "report", 0.0),
        ],
        details=details,
    )
