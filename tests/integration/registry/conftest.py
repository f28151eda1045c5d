"""The registry app on real PostgreSQL and Redis, its lifespan running, driven over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.official_units import official_units
from services.registry.bootstrap import create_app
from services.registry.cli import LoadReport, load_units
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url_for("registry"), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def legacy_yen_bai(engine: AsyncEngine) -> LoadReport:
    """Legacy province 15 (Yên Bái): 9 districts, 168 communes, from vietnam-provinces."""
    return await load_units(engine, "legacy", official_units("legacy", ["15"]))


@pytest.fixture
async def lao_cai_2025(engine: AsyncEngine) -> LoadReport:
    """2025 province 15 (Lào Cai), the same code as Yên Bái in the legacy edition."""
    return await load_units(engine, "2025", official_units("2025", ["15"]))


@pytest.fixture
async def app(settings: Settings, legacy_yen_bai: LoadReport) -> AsyncIterator[FastAPI]:
    """The registry with its lifespan (engine, Redis, relay) running, Yên Bái loaded."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client
