"""Activity ingest: batch endpoint vs single-event endpoint, events/s side by side in one run.

Starts a real `cdtt serve activity` on a fresh database (created here, dropped after) and
a fresh stream namespace, feeds its team directory with team.created events, then per
run posts the same number of events one by one (concurrent requests) and in batches of
1,000, and prints the medians side by side:

    export CDTT_REDIS_URL=redis://127.0.0.1:6379/0
    export CDTT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.ingest_quick [--events 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from shared.db import engine_scope
from shared.events import TeamCreated, entry_fields
from shared.events.activity import CATEGORIES
from shared.events.registry import MemberState, TeamState
from shared.migrations import migrate_service
from shared.settings import Settings, libpq_url
from shared.streams import REGISTRY_EVENTS, stream_key

TEAMS = 50
BATCH_SIZE = 1000


def _database_url(base: str, name: str) -> str:
    return make_url(libpq_url(base)).set(database=name).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def bench_database(base: str) -> AsyncIterator[str]:
    """A migrated database of our own for the run, dropped afterwards."""
    name = f"cdtt_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_database_url(base, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _database_url(base, name)
    try:
        settings = Settings(database_url=url, _env_file=None)
        async with engine_scope(settings.database_url_for("activity"), pool_size=1) as engine:
            await migrate_service(engine, "activity")
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def activity_server(database_url: str, redis_url: str, namespace: str) -> AsyncIterator[str]:
    """`cdtt serve activity` on a free port; its base URL once /readyz says ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "CDTT_DATABASE_URL": database_url,
        "CDTT_REDIS_URL": redis_url,
        "CDTT_STREAM_NAMESPACE": namespace,
        "CDTT_LOG_LEVEL": "WARNING",
        # Ingest cost only: with auth on, the per-key rate limit (CDTT_RATE_LIMIT_PER_SECOND,
        # default 100 requests/s) would cap the single-event endpoint by itself.
        "CDTT_AUTH": "off",
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "cdtt"),
        *("serve", "activity", "--port", str(port)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab"),  # noqa: SIM115, ASYNC230
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("activity did not become ready")
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def feed_directory(redis: Redis, namespace: str, client: httpx.AsyncClient) -> list[str]:
    """TEAMS active teams on registry.events.v1, waited for until activity accepts them."""
    team_ids = []
    for n in range(TEAMS):
        state = TeamState(
            team_id=uuid.uuid4(),
            unit_code=f"04378-{n + 1:03d}",
            unit_level="village",
            status="active",
            version=1,
            members=(MemberState(member_id=uuid.uuid4(), full_name="Lò Văn Pá", role="leader"),),
        )
        event = TeamCreated.new(
            edition="legacy", unit_path=("15", "136", "04378", state.unit_code), payload=state
        )
        await redis.xadd(stream_key(REGISTRY_EVENTS, namespace), entry_fields(event))  # type: ignore[arg-type]
        team_ids.append(str(state.team_id))
    deadline = time.monotonic() + 30
    while (
        await client.post("/v1/support-events", json=event_body(team_ids[-1]))
    ).status_code != 202:
        if time.monotonic() > deadline:
            raise RuntimeError("team directory not fed")
        await asyncio.sleep(0.05)
    return team_ids


def event_body(team_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "team_id": team_id,
        "occurred_on": str(date(2024, 1, 1) + timedelta(days=random.randrange(300))),
        "category": random.choice(CATEGORIES),
        "residents_helped": random.randint(1, 40),
    }


async def post_all(
    client: httpx.AsyncClient, path: str, bodies: Sequence[Any], concurrency: int, expect: int
) -> float:
    """Post every body with at most `concurrency` in flight; events/s over the wall time."""
    queue = list(reversed(bodies))

    async def worker() -> int:
        sent = 0
        while queue:
            body = queue.pop()
            response = await client.post(path, json=body)
            if response.status_code != expect:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            sent += len(body["events"]) if "events" in body else 1
        return sent

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
    return sent / (time.perf_counter() - started)


async def main(events: int, runs: int, single_concurrency: int, batch_concurrency: int) -> None:
    settings = Settings()
    redis_url = settings.require_redis_url()
    namespace = f"bench:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(redis_url)
    rates: dict[str, list[float]] = {"single": [], "batch": []}
    try:
        async with (
            bench_database(settings.database_url or "") as database_url,
            activity_server(database_url, redis_url, namespace) as base,
            httpx.AsyncClient(
                base_url=base,
                timeout=60,
                limits=httpx.Limits(max_connections=max(single_concurrency, batch_concurrency)),
            ) as client,
        ):
            team_ids = await feed_directory(redis, namespace, client)
            for _ in range(runs):
                singles = [event_body(random.choice(team_ids)) for _ in range(events)]
                rates["single"].append(
                    await post_all(client, "/v1/support-events", singles, single_concurrency, 202)
                )
                batches = [
                    {"events": [event_body(random.choice(team_ids)) for _ in range(BATCH_SIZE)]}
                    for _ in range(max(1, events // BATCH_SIZE))
                ]
                rates["batch"].append(
                    await post_all(
                        client, "/v1/support-events:batch", batches, batch_concurrency, 200
                    )
                )
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    single, batch = statistics.median(rates["single"]), statistics.median(rates["batch"])
    print(
        f"activity ingest, {events:,} events per endpoint per run, median of {runs} runs "
        f"(real `cdtt serve activity`, auth off, relay publishing meanwhile):"
    )
    print(
        f"  single  POST /v1/support-events        {single:>8,.0f} events/s  "
        f"({single_concurrency} in flight; runs: {', '.join(f'{r:,.0f}' for r in rates['single'])})"
    )
    print(
        f"  batch   POST /v1/support-events:batch  {batch:>8,.0f} events/s  "
        f"({BATCH_SIZE:,} per request, {batch_concurrency} in flight; "
        f"runs: {', '.join(f'{r:,.0f}' for r in rates['batch'])})"
    )
    print(f"  batch / single = {batch / single:.1f}x")
    # The machine is shared: say how busy it was, so figures from runs can be compared.
    print(f"  load average after the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single-concurrency", type=int, default=16)
    parser.add_argument("--batch-concurrency", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs, args.single_concurrency, args.batch_concurrency))
