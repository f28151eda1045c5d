"""Fixtures shared by every test layer: real servers, a fresh database and stream namespace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from cdtt.stack import migrate_all
from shared.messaging.connection import is_cluster, redis_client
from shared.runtime.settings import Settings, libpq_url
from tests.cluster import find_cluster
from tests.servers import Servers, find_servers, urls_from


def database_url(base: str, name: str) -> str:
    """`base` pointing at another database on the same server (libpq form)."""
    url = make_url(libpq_url(base)).set(database=name)
    return url.render_as_string(hide_password=False)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _admin_execute(servers: Servers, sql: str) -> None:
    admin = await asyncpg.connect(database_url(servers.database_url, "postgres"))
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def create_database(servers: Servers, name: str, template: str | None = None) -> None:
    """An empty database, or a copy of `template`."""
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin_execute(servers, f'CREATE DATABASE "{name}"{copy}')


async def drop_database(servers: Servers, name: str) -> None:
    await _admin_execute(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def database_copy(servers: Servers, template: str, prefix: str) -> AsyncIterator[str]:
    """A fresh copy of the database `template`, named `<prefix>_<random>`, dropped afterwards."""
    name = unique_name(prefix)
    await create_database(servers, name, template)
    try:
        yield name
    finally:
        await drop_database(servers, name)


async def delete_namespace(redis_url: str, namespace: str) -> None:
    """Remove the namespace's keys (on a cluster: from every node, slot by slot)."""
    redis = redis_client(redis_url, cluster=await is_cluster(redis_url, None))
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def isolated_settings(
    servers: Servers, template: str, *, prefix: str, namespace: str, **overrides: Any
) -> AsyncIterator[Settings]:
    """Settings on a copy of `template` and a stream namespace `<namespace>:<key>:` of their
    own, both removed afterwards; `overrides` set other settings."""
    async with database_copy(servers, template, prefix) as name:
        scoped = f"{namespace}:{name.rsplit('_', 1)[-1]}:"
        try:
            yield Settings(
                env="test",
                redis_url=servers.redis_url,
                database_url=database_url(servers.database_url, name),
                stream_namespace=scoped,
                _env_file=None,  # type: ignore[call-arg]
                **overrides,
            )
        finally:
            await delete_namespace(servers.redis_url, scoped)


def pytest_configure(config: pytest.Config) -> None:
    """Stop before collecting anything when only one of the two server URLs is set."""
    try:
        urls_from(os.environ)
    except ValueError as mistake:
        raise pytest.UsageError(str(mistake)) from None


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with find_servers() as found:
        yield found


@pytest.fixture(scope="session")
def template_database(servers: Servers) -> Iterator[str]:
    """One database migrated once per run; each test gets a copy of it."""
    name = unique_name("cdtt_tpl")

    async def create() -> None:
        await create_database(servers, name)
        await migrate_all(
            Settings(database_url=database_url(servers.database_url, name), _env_file=None)  # type: ignore[call-arg]
        )

    asyncio.run(create())
    yield name
    asyncio.run(drop_database(servers, name))


@pytest.fixture
async def settings(servers: Servers, template_database: str) -> AsyncIterator[Settings]:
    """Settings for one test: its own migrated database and its own stream namespace."""
    # Tests of what the services do run without API keys; tests/*/security turn auth on
    # (`secured` fixture) and present keys from the `api_keys` fixture.
    async with isolated_settings(
        servers, template_database, prefix="cdtt_t", namespace="test", auth=False
    ) as isolated:
        yield isolated


# Tests on a Redis Cluster (tests/cluster.py finds or starts one), streams in 4 partitions.
CLUSTER_PARTITIONS = 4


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    with find_cluster() as url:
        yield url


@pytest.fixture
async def cluster_settings(
    servers: Servers, template_database: str, cluster_url: str
) -> AsyncIterator[Settings]:
    """The test's own database and namespace, its streams in 4 partitions on the cluster."""
    on_cluster = Servers(cluster_url, servers.database_url, "cluster")
    async with isolated_settings(
        on_cluster,
        template_database,
        prefix="cdtt_c",
        namespace="cluster",
        auth=False,
        redis_cluster=True,
        stream_partitions=CLUSTER_PARTITIONS,
    ) as isolated:
        yield isolated
