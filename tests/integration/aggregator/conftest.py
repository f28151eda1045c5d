"""Fixtures shared by the aggregator's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.db import make_engine
from shared.runtime.settings import Settings


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on this test's aggregator database."""
    engine = make_engine(settings.database_url_for("aggregator"), pool_size=8)
    yield engine
    await engine.dispose()
