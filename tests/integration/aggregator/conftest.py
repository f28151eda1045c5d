"""Fixtures shared by the aggregator's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.db import make_engine
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess, Stack


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on this test's aggregator database."""
    engine = make_engine(settings.database_url_for("aggregator"), pool_size=8)
    yield engine
    await engine.dispose()


@pytest.fixture
async def aggregator(settings: Settings, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """The aggregator as a process on the legacy edition (its logs printed at the end)."""
    async with Stack(settings, tmp_path) as stack:
        try:
            yield await stack.start("aggregator", env={"CDTT_EDITION": "legacy"})
        finally:
            print(stack.logs())
