"""Drain rate of shared.messaging.consumer.GroupConsumer against a raw XREADGROUP+XACK loop.

Fills a fresh stream with N contract events, drains it with each reader in turn (new
group at "0" each time), median of R runs, and prints the figures side by side:

    CDTT_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.consumer_drain
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from shared.contracts.events import Event, UnitRegistered, decode_entry, entry_fields
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import REGISTRY_EVENTS, stream_key
from shared.messaging.consumer import GroupConsumer

BATCH = 500


async def fill(redis: Redis, key: str, count: int) -> None:
    for start in range(0, count, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(count, start + 5000)):
                payload = UnitState(
                    code=f"{n:05d}",
                    name=f"Thôn {n}",
                    level="village",
                    kind="thôn",
                    parent_code="04270",
                )
                event = UnitRegistered.new(
                    edition="legacy", unit_path=("15", "136", "04270", f"{n:05d}"), payload=payload
                )
                pipe.xadd(key, entry_fields(event))  # type: ignore[arg-type]
            await pipe.execute()


async def raw_loop(redis: Redis, key: str, group: str, count: int, decode: bool) -> float:
    await redis.xgroup_create(key, group, id="0")
    started, done = time.perf_counter(), 0
    while done < count:
        reply: Any = await redis.xreadgroup(group, "raw", {key: ">"}, count=BATCH, block=1000)
        for _, entries in reply:
            if decode:
                for _, fields in entries:
                    decode_entry(fields)
            await redis.xack(key, group, *[entry_id for entry_id, _ in entries])
            done += len(entries)
    return count / (time.perf_counter() - started)


async def consumer_run(url: str, namespace: str, group: str, count: int) -> float:
    seen = 0
    finished = asyncio.Event()

    async def no_op(events: Sequence[Event]) -> None:
        nonlocal seen
        seen += len(events)
        if seen >= count:
            finished.set()

    consumer = GroupConsumer(
        redis_url=url,
        group=group,
        handlers={REGISTRY_EVENTS: no_op},
        namespace=namespace,
        batch_size=BATCH,
        reclaim_idle_ms=60_000,
    )
    started = time.perf_counter()
    await consumer.start()
    await finished.wait()
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return count / elapsed


async def main(count: int, runs: int) -> None:
    url = os.environ.get("CDTT_REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"bench:{uuid.uuid4().hex[:8]}:"
    key = stream_key(REGISTRY_EVENTS, namespace)
    redis = Redis.from_url(url)
    rates: dict[str, list[float]] = {"raw": [], "raw+decode": [], "GroupConsumer": []}
    try:
        await fill(redis, key, count)
        for run in range(runs):
            rates["raw"].append(await raw_loop(redis, key, f"raw{run}", count, decode=False))
            rates["raw+decode"].append(await raw_loop(redis, key, f"dec{run}", count, decode=True))
            rates["GroupConsumer"].append(await consumer_run(url, namespace, f"gc{run}", count))
    finally:
        await redis.delete(key)
        await redis.aclose()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{count} entries, batch {BATCH}, median of {runs} runs (events/s):")
    for name, values in rates.items():
        print(
            f"  {name:14} {medians[name]:>9,.0f}   runs: {', '.join(f'{v:,.0f}' for v in values)}"
        )
    print(f"  GroupConsumer / raw        = {medians['GroupConsumer'] / medians['raw']:.2f}")
    print(f"  GroupConsumer / raw+decode = {medians['GroupConsumer'] / medians['raw+decode']:.2f}")
    print(f"  load average after the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs))
