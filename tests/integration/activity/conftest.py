"""Activity under test: the real app with its lifespan entered, and an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.activity.bootstrap import create_app
from shared.runtime.settings import Settings


@pytest.fixture
def activity_settings(settings: Settings) -> Settings:
    """Short reclaim and relay intervals, so retries happen within a test's patience."""
    return settings.model_copy(update={"reclaim_idle_ms": 300, "relay_poll_seconds": 0.2})


@pytest.fixture
async def app(activity_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(activity_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://activity") as http:
        yield http
