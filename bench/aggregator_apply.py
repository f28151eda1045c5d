"""Apply rate of the aggregator on one process: the real GroupConsumer, handlers and PostgreSQL.

Fills fresh streams with N events shaped like the programme's traffic (units, then teams
with member changes and dissolutions, mostly support events), drains them with the
consumer the service runs (group "aggregator", batch CDTT_CONSUMER_BATCH_SIZE), from a
fresh projection each run, and prints events/s per run and the median:

    CDTT_REDIS_URL=redis://127.0.0.1:6379/0 \\
    CDTT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    .venv/bin/python -m bench.aggregator_apply --events 50000 --runs 3

It creates (and drops) its own database on that server and its own stream namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import date, timedelta

import asyncpg
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cdtt.cli import migrate_all
from services.aggregator.adapters.tables import REBUILT_TABLES
from services.aggregator.entrypoints.subscribers import aggregator_consumer
from shared.db import engine_scope
from shared.envelope import Level
from shared.events import Event, SupportRecorded, TeamCreated, TeamDissolved, TeamMembersChanged
from shared.events.activity import CATEGORIES, SupportState
from shared.events.registry import MemberState, TeamState, UnitRegistered, UnitState
from shared.settings import Settings, libpq_url
from shared.streams import (
    ACTIVITY_EVENTS,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    REGISTRY_EVENTS,
    STREAMS,
    stream_key,
)


def traffic(count: int, seed: int = 1) -> list[Event]:
    """Units of one legacy province, teams on most of them, the rest support events."""
    rng = random.Random(seed)
    events: list[Event] = []
    paths: list[tuple[tuple[str, ...], Level]] = [(("15",), "province")]
    for d in range(10):
        district = ("15", f"1{d:02d}")
        paths.append((district, "district"))
        for c in range(20):
            commune = (*district, f"{d:02d}{c:03d}")
            paths.append((commune, "commune"))
            paths += [((*commune, f"{commune[-1]}-{v:03d}"), "village") for v in range(5)]
    for path, level in paths:
        unit = UnitState(
            code=path[-1],
            name=f"Đơn vị {path[-1]}",
            level=level,
            kind=level,
            parent_code=path[-2] if len(path) > 1 else None,
        )
        events.append(UnitRegistered.new(edition="legacy", unit_path=path, payload=unit))
    teams = []
    for path, level in rng.sample(paths, 800):
        team_id, version = uuid.uuid4(), 1
        members = tuple(
            MemberState(member_id=uuid.uuid4(), full_name="Thành viên", role="member")
            for _ in range(rng.randint(2, 8))
        )
        kinds: list[type[TeamCreated | TeamMembersChanged | TeamDissolved]] = [
            TeamCreated,
            TeamMembersChanged,
            TeamMembersChanged,
        ]
        if rng.random() < 0.2:
            kinds.append(TeamDissolved)
        for kind in kinds:
            state = TeamState(
                team_id=team_id,
                unit_code=path[-1],
                unit_level=level,
                status="dissolved" if kind is TeamDissolved else "active",
                version=version,
                members=members[: max(1, len(members) - version + 1)],
            )
            events.append(kind.new(edition="legacy", unit_path=path, payload=state))
            version += 1
        teams.append((team_id, path))
    while len(events) < count:
        team_id, path = rng.choice(teams)
        support = SupportState(
            team_id=team_id,
            unit_code=path[-1],
            category=rng.choice(CATEGORIES),
            occurred_on=date(2025, 1, 1) + timedelta(days=rng.randint(0, 330)),
            residents_helped=rng.randint(1, 50),
        )
        events.append(SupportRecorded.new(edition="legacy", unit_path=path, payload=support))
    return events[:count]


async def fill(redis: Redis, namespace: str, events: list[Event]) -> None:
    for start in range(0, len(events), 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for event in events[start : start + 5_000]:
                stream = ACTIVITY_EVENTS if isinstance(event, SupportRecorded) else REGISTRY_EVENTS
                fields: dict[FieldT, EncodableT] = {ENVELOPE_FIELD: event.to_json()}
                pipe.xadd(stream_key(stream, namespace), fields)
            await pipe.execute()


async def one_run(settings: Settings, redis: Redis, total: int) -> float:
    async with engine_scope(settings.database_url_for("aggregator")) as engine:
        async with engine.begin() as conn:
            tables = ", ".join(f"aggregator.{t}" for t in REBUILT_TABLES)
            await conn.execute(text(f"TRUNCATE {tables}"))
        for stream in STREAMS:
            key = stream_key(stream, settings.stream_namespace)
            await redis.xgroup_destroy(key, AGGREGATOR_GROUP)
        consumer = aggregator_consumer(settings, engine)
        started = time.perf_counter()
        await consumer.start()
        try:
            # Polled: the consumer has no completion signal, and 10 ms is far below a run.
            while sum(s.consumed for s in consumer.stats.values()) < total:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
        finally:
            await consumer.stop()
    return total / elapsed


async def main(count: int, runs: int) -> None:
    base = Settings()
    name = f"cdtt_bench_{uuid.uuid4().hex[:8]}"
    admin_url = make_url(libpq_url(base.database_url or "")).set(database="postgres")
    admin = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(libpq_url(base.database_url or "")).set(database=name)
    settings = base.model_copy(
        update={
            "database_url": database_url.render_as_string(hide_password=False),
            "stream_namespace": f"bench:{name}:",
        }
    )
    redis = Redis.from_url(settings.require_redis_url())
    try:
        await migrate_all(settings)
        events = traffic(count)
        await fill(redis, settings.stream_namespace, events)
        rates = []
        for run in range(runs):
            rates.append(await one_run(settings, redis, len(events)))
            print(f"run {run + 1}: {rates[-1]:,.0f} events/s")
        print(
            f"aggregator apply rate, one process, {len(events):,} events, batch "
            f"{settings.consumer_batch_size}: median {statistics.median(rates):,.0f} events/s"
        )
    finally:
        for stream in STREAMS:
            await redis.delete(stream_key(stream, settings.stream_namespace))
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs))
