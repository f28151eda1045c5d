"""Async engine and session plumbing; built in a service's lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Constraint names Alembic can diff and a reader can recognise.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """Each service owns one PostgreSQL schema; its tables live in this metadata."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "cdtt") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def engine_scope(url: str, **kwargs: object) -> AsyncIterator[AsyncEngine]:
    """An engine that is disposed when the scope (a lifespan, a command) ends."""
    engine = make_engine(url, **kwargs)  # type: ignore[arg-type]
    try:
        yield engine
    finally:
        await engine.dispose()


async def database_reachable(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
