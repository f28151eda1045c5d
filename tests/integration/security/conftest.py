"""Security tests run with auth on: real keys in the test database, services that check them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.store import create_key
from services.registry.adapters.official_units import official_units
from services.registry.bootstrap import create_app as create_registry
from services.registry.cli import load_units
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings
from shared.web.keys import bearer_headers


@dataclass(frozen=True)
class Key:
    key_id: str
    text: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer_headers(self.text)


@dataclass(frozen=True)
class Keys:
    """One key per role and scope the tests need (legacy edition provinces 15 and 20)."""

    admin: Key
    operator: Key
    operator_15: Key
    publisher_15: Key
    publisher_20: Key


@pytest.fixture
def secured(settings: Settings) -> Settings:
    """The test's settings with auth on, as in production (CDTT_AUTH defaults to on)."""
    return settings.model_copy(update={"auth": True, "relay_poll_seconds": 0.2})


@pytest.fixture
async def auth_engine(secured: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(secured.auth_database_url_for(), pool_size=2)
    yield engine
    await engine.dispose()


async def make_key(
    engine: AsyncEngine, role: str, province: str | None = None, name: str = ""
) -> Key:
    stored, new = await create_key(
        engine,
        role=role,
        province_code=province,
        edition=None if province is None else "legacy",
        name=name or f"test {role} {province or 'all'}",
    )
    return Key(stored.key_id, new.text)


@pytest.fixture
async def keys(auth_engine: AsyncEngine) -> Keys:
    return Keys(
        admin=await make_key(auth_engine, "admin"),
        operator=await make_key(auth_engine, "operator"),
        operator_15=await make_key(auth_engine, "operator", "15"),
        publisher_15=await make_key(auth_engine, "publisher", "15"),
        publisher_20=await make_key(auth_engine, "publisher", "20"),
    )


@pytest.fixture
async def registry_engine(secured: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(secured.database_url_for("registry"), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def registry(secured: Settings, registry_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The registry with auth on and legacy Yên Bái (province 15) loaded."""
    await load_units(registry_engine, "legacy", official_units("legacy", ["15"]))
    app = create_registry(secured)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def registry_client(registry: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=registry)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client


@pytest.fixture
async def redis(secured: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(secured.require_redis_url())
    yield client
    await client.aclose()
