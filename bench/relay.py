"""Item 2: the outbox relay's rate (outbox → stream) vs a raw DELETE … SKIP LOCKED + XADD loop.

Per pair of runs, activity's outbox is filled with the same number of support.recorded
rows (one INSERT … SELECT, untimed), then drained to a fresh stream key by:
- ours: `shared.messaging.outbox.OutboxRelay.relay_batch` in the loop its `run()` uses (rows are
  claimed with SKIP LOCKED, XADDed in one pipeline, marked sent and kept for replay);
- raw: asyncpg `DELETE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
  RETURNING`, the rows XADDed in one redis-py pipeline, commit.
Both take batches of CDTT_RELAY_BATCH_SIZE (500).
"""

from __future__ import annotations

import time

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from bench.harness import ItemResult, Paired, Scratch, rate, ratio_row
from bench.traffic import hierarchy, support_envelopes
from services.activity.adapters.tables import outbox
from shared.contracts.streams import ACTIVITY_EVENTS, ENVELOPE_FIELD, StreamLayout
from shared.messaging.outbox import OutboxRelay
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings, libpq_url

# The raw loop claims activity's outbox rows itself, naming the table through its owner.
_FILL = f"""
INSERT INTO {outbox.fullname} (stream, event_id, event_type, envelope)
SELECT $1, (e::json ->> 'event_id')::uuid, 'support.recorded', e FROM unnest($2::text[]) AS e
"""
_RAW_CLAIM = f"""
DELETE FROM {outbox.fullname} WHERE id IN (
  SELECT id FROM {outbox.fullname} WHERE sent_at IS NULL ORDER BY id LIMIT $1
  FOR UPDATE SKIP LOCKED
) RETURNING stream, envelope
"""


async def fill_outbox(conn: asyncpg.Connection, envelopes: list[bytes]) -> None:
    texts = [e.decode() for e in envelopes]
    for start in range(0, len(texts), 10_000):
        await conn.execute(_FILL, ACTIVITY_EVENTS, texts[start : start + 10_000])
    await conn.execute(f"VACUUM ANALYZE {outbox.fullname}")


async def raw_relay(conn: asyncpg.Connection, redis: Redis, key: str, batch: int) -> float:
    started, sent = time.perf_counter(), 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(_RAW_CLAIM, batch)
            if not rows:
                break
            async with redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(key, {ENVELOPE_FIELD: row["envelope"]})
                await pipe.execute()
        sent += len(rows)
    return rate(sent, time.perf_counter() - started)


async def our_relay(settings: Settings, redis: Redis, namespace: str) -> float:
    url = settings.database_url_for("activity")
    async with engine_scope(url) as engine:
        # The relay activity runs, as its settings build it, sending to this run's namespace.
        relay = OutboxRelay.from_settings(
            settings.model_copy(update={"stream_namespace": namespace}),
            service="activity",
            engine=engine,
            redis=redis,
            layout=StreamLayout(namespace),
            table=outbox,
        )
        # Connected before the clock starts, as the raw loop's connection is.
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        started, sent = time.perf_counter(), 0
        while count := await relay.relay_batch():
            sent += count
        return rate(sent, time.perf_counter() - started)


async def measure(settings: Settings, events: int, runs: int) -> Paired:
    tree = hierarchy(2, 20, 10)
    redis = Redis.from_url(settings.require_redis_url())
    conn = await asyncpg.connect(libpq_url(settings.database_url_for("activity")))
    paired = Paired()
    try:
        for run in range(runs):
            envelopes = support_envelopes(tree, events, seed=run)
            ours_ns = f"{settings.stream_namespace}ours{run}:"
            raw_key = f"{settings.stream_namespace}raw{run}:{ACTIVITY_EVENTS}"
            results: dict[str, float] = {}
            for which in ("ours", "raw") if run % 2 else ("raw", "ours"):
                await conn.execute(f"TRUNCATE {outbox.fullname}")
                await fill_outbox(conn, envelopes)
                if which == "ours":
                    results[which] = await our_relay(settings, redis, ours_ns)
                else:
                    results[which] = await raw_relay(
                        conn, redis, raw_key, settings.relay_batch_size
                    )
            paired.add(results["ours"], results["raw"])
            await redis.delete(raw_key, f"{ours_ns}{ACTIVITY_EVENTS}")
    finally:
        await conn.close()
        await redis.aclose()
    return paired


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    events, runs = (5_000, 3) if quick else (20_000, 5)
    async with scratch.space("relay") as settings:
        paired = await measure(settings, events, runs)
    result = ItemResult("2", "Relay rate")
    result.rows.append(
        ratio_row(
            "2",
            f"outbox relay → stream ({events:,} rows/run, batch "
            f"{settings.relay_batch_size}, {runs} pairs)",
            paired,
            "raw DELETE…SKIP LOCKED + XADD",
            "≥ 0.6×",
            0.6,
        )
    )
    result.details = {"rows_per_run": events, "relay": paired.as_json()}
    return result
