"""The producer runtime both producers serve on, against real PostgreSQL and Redis.

Each producer gets the same housekeeping (the backlog gauge, the key purge) and the same
readiness; activity once never set the gauge, which is why both are tested here.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import ModuleType

import pytest
from sqlalchemy import func, insert, select, text

from services.activity.adapters import tables as activity_tables
from services.registry.adapters import tables as registry_tables
from shared.runtime.db import engine_scope
from shared.runtime.metrics import REGISTRY
from shared.runtime.metrics import outbox_backlog as outbox_backlog_rows
from shared.runtime.producer import ProducerName, ProducerRuntime, producer_runtime
from shared.runtime.settings import Settings
from shared.web.idempotency import DEFAULT_RETENTION
from tests.waiting import wait_until

PRODUCERS = pytest.mark.parametrize(
    ("service", "tables"), [("registry", registry_tables), ("activity", activity_tables)]
)


async def seed_keys(settings: Settings, service: ProducerName, tables: ModuleType) -> None:
    """A key past the retention window and a fresh one."""
    expired = func.now() - DEFAULT_RETENTION - text("interval '1 minute'")
    row = {"fingerprint": "f", "method": "POST", "path": "/v1/x", "status": 201, "body": "{}"}
    async with engine_scope(settings.database_url_for(service)) as engine, engine.begin() as conn:
        await conn.execute(
            insert(tables.idempotency_keys),
            [{"key": "expired", **row}, {"key": "fresh", **row}],
        )
        await conn.execute(
            tables.idempotency_keys.update()
            .where(tables.idempotency_keys.c.key == "expired")
            .values(created_at=expired)
        )


def runtime_of(
    settings: Settings, service: ProducerName, tables: ModuleType
) -> AbstractAsyncContextManager[ProducerRuntime]:
    return producer_runtime(
        settings, service, outbox=tables.outbox, idempotency_keys=tables.idempotency_keys
    )


async def keys_left(runtime: ProducerRuntime) -> set[str]:
    async with runtime.engine.connect() as conn:
        return set((await conn.scalars(select(runtime.idempotency_keys.c.key))).all())


@PRODUCERS
async def test_housekeeping_sets_the_backlog_gauge_and_purges_expired_keys(
    settings: Settings, service: ProducerName, tables: ModuleType
) -> None:
    await seed_keys(settings, service, tables)
    outbox_backlog_rows.labels(service).set(-1)

    async def measured() -> bool:
        value = REGISTRY.get_sample_value("cdtt_outbox_backlog_rows", {"service": service})
        return value is not None and value >= 0

    async with runtime_of(settings, service, tables) as runtime:

        async def only_the_fresh_key_left() -> bool:
            return await keys_left(runtime) == {"fresh"}

        await wait_until(measured, timeout=5, message=f"{service} backlog measured at start")
        await wait_until(only_the_fresh_key_left, timeout=5, message="expired key purged")


@PRODUCERS
async def test_readiness_needs_the_database_redis_the_relay_and_watched_workers(
    settings: Settings, service: ProducerName, tables: ModuleType
) -> None:
    async with runtime_of(settings, service, tables) as runtime:
        assert await runtime.readiness() == {"database": True, "redis": True, "relay": True}
        healthy = {"worker": True}
        runtime.watch("worker", lambda: healthy["worker"])
        assert (await runtime.readiness())["worker"] is True
        healthy["worker"] = False
        assert (await runtime.readiness())["worker"] is False
        await runtime.relay.stop()
        assert (await runtime.readiness())["relay"] is False


@PRODUCERS
async def test_the_relay_stops_with_the_scope(
    settings: Settings, service: ProducerName, tables: ModuleType
) -> None:
    async with runtime_of(settings, service, tables) as runtime:
        assert runtime.relay.alive()
    assert not runtime.relay.alive()
