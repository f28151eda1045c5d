"""Fixtures shared by every test layer: real servers, a fresh database and stream namespace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from cdtt.cli import migrate_all
from shared.runtime.settings import Settings, libpq_url
from tests.servers import Servers, find_servers


def database_url(base: str, name: str) -> str:
    """`base` pointing at another database on the same server (libpq form)."""
    url = make_url(libpq_url(base)).set(database=name)
    return url.render_as_string(hide_password=False)


async def _admin(servers: Servers) -> asyncpg.Connection:
    return await asyncpg.connect(database_url(servers.database_url, "postgres"))


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with find_servers() as found:
        yield found


@pytest.fixture(scope="session")
def template_database(servers: Servers) -> Iterator[str]:
    """One database migrated once per run; each test gets a copy of it."""
    name = f"cdtt_tpl_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await _admin(servers)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate_all(
            Settings(database_url=database_url(servers.database_url, name), _env_file=None)  # type: ignore[call-arg]
        )

    async def drop() -> None:
        admin = await _admin(servers)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


@pytest.fixture
async def settings(servers: Servers, template_database: str) -> AsyncIterator[Settings]:
    """Settings for one test: its own migrated database and its own stream namespace."""
    key = uuid.uuid4().hex[:12]
    name = f"cdtt_t_{key}"
    admin = await _admin(servers)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await admin.close()
    namespace = f"test:{key}:"
    yield Settings(
        env="test",
        redis_url=servers.redis_url,
        database_url=database_url(servers.database_url, name),
        stream_namespace=namespace,
        # Tests of what the services do run without API keys; tests/*/security turn auth
        # on (`secured` fixture) and present keys from the `api_keys` fixture.
        auth=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    admin = await _admin(servers)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    redis = Redis.from_url(servers.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
