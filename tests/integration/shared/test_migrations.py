"""Every service's migrations build exactly the tables its code declares, and go down and up.

The producers' outbox and Idempotency-Key tables are created by the helpers beside their
definitions (create_outbox, create_idempotency_keys); this is where a helper and the
table it creates would be seen to drift apart.
"""

from __future__ import annotations

import importlib
import importlib.resources
from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.db import engine_scope
from shared.runtime.migrations import migrate_auth, migrate_service
from shared.runtime.settings import Settings

SCHEMAS = ("registry", "activity", "aggregator", "auth")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with engine_scope(settings.database_url_for("registry"), pool_size=2) as engine:
        yield engine


def declared(schema: str) -> MetaData:
    """The metadata the service's code reads and writes through (its adapters/tables.py)."""
    metadata: MetaData = importlib.import_module(f"services.{schema}.adapters.tables").metadata
    return metadata


def differences(conn: Connection, schema: str) -> list[object]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_schemas": True,
            "include_name": lambda name, kind, _: kind != "schema" or name == schema,
            "version_table_schema": schema,
        },
    )
    return list(compare_metadata(context, declared(schema)))


def tables(conn: Connection, schema: str) -> set[str]:
    return set(inspect(conn).get_table_names(schema=schema))


def downgrade(conn: Connection, schema: str, revision: str) -> None:
    config = Config()
    location = importlib.resources.files(f"services.{schema}") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = conn
    command.downgrade(config, revision)


async def upgrade(engine: AsyncEngine, schema: str) -> None:
    if schema == "auth":
        await migrate_auth(engine)
    else:
        await migrate_service(engine, schema)  # type: ignore[arg-type]


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_migrations_build_exactly_the_declared_tables_and_go_down_and_up(
    engine: AsyncEngine, schema: str
) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(differences, schema) == []
    async with engine.begin() as conn:
        await conn.run_sync(downgrade, schema, "base")
    async with engine.connect() as conn:
        assert await conn.run_sync(tables, schema) == {"alembic_version"}
    await upgrade(engine, schema)
    async with engine.connect() as conn:
        assert await conn.run_sync(differences, schema) == []
