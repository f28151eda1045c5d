"""Alembic plumbing shared by every service: each service migrates its own schema.

`cdtt migrate` calls `migrate_service` for each service and `migrate_auth` for the API
keys; a `migrations/env.py` only names its metadata and calls `run_env`. Tables that shared
defines for every producer are created in their migrations by helpers beside the tables
(`create_outbox`, `create_idempotency_keys`), which take Alembic's `op`.
"""

from __future__ import annotations

import importlib.resources
from typing import Any, Protocol

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import SchemaItem

from shared.runtime.settings import ServiceName


class SchemaOperations(Protocol):
    """What a migration helper asks of Alembic's `op` (the module, or an Operations)."""

    def create_table(self, table_name: str, *columns: SchemaItem, **kw: Any) -> Table: ...

    def add_column(
        self, table_name: str, column: Column[Any], *, schema: str | None = ...
    ) -> None: ...

    def drop_column(
        self, table_name: str, column_name: str, *, schema: str | None = ...
    ) -> None: ...

    def drop_constraint(
        self,
        constraint_name: str,
        table_name: str,
        type_: str | None = ...,
        *,
        schema: str | None = ...,
    ) -> None: ...

    def create_primary_key(
        self,
        constraint_name: str | None,
        table_name: str,
        columns: list[str],
        *,
        schema: str | None = ...,
    ) -> None: ...

    def execute(self, sqltext: Any) -> None: ...


# Taken inside the migration transaction so concurrent `cdtt migrate` runs queue up.
_MIGRATE_LOCK_KEY = 0x6364_7474


def _config(package: str) -> Config:
    location = importlib.resources.files(package) / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def _migrate_schema(engine: AsyncEngine, schema: str, package: str, revision: str) -> None:
    """Create the schema if needed and upgrade it, in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade, _config(package), revision)


async def migrate_service(
    engine: AsyncEngine, service: ServiceName, revision: str = "head"
) -> None:
    """Create the service's schema if needed and upgrade it, in one transaction."""
    await _migrate_schema(engine, service, f"services.{service}", revision)


async def migrate_auth(engine: AsyncEngine, revision: str = "head") -> None:
    """The `auth` schema (API keys, services/auth/migrations), which every service reads."""
    await _migrate_schema(engine, "auth", "services.auth", revision)


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode only: we always have a server)."""
    connection: Any = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=metadata.schema,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == metadata.schema,
    )
    with context.begin_transaction():
        context.run_migrations()
