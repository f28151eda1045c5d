"""Fixtures every integration test may use beside tests/conftest.py's servers and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shared.runtime.settings import Settings


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the test's Redis; streams are the test's own by their namespace prefix."""
    client = Redis.from_url(settings.require_redis_url())
    yield client
    await client.aclose()
