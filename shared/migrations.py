"""Alembic plumbing shared by every service: each service migrates its own schema.

`cdtt migrate` calls `migrate_service` for each service; a service's
`migrations/env.py` only names its metadata and calls `run_env`.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import ServiceName

# Taken inside the migration transaction so concurrent `cdtt migrate` runs queue up.
_MIGRATE_LOCK_KEY = 0x6364_7474


def _config(service: ServiceName) -> Config:
    location = importlib.resources.files(f"services.{service}") / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate_service(
    engine: AsyncEngine, service: ServiceName, revision: str = "head"
) -> None:
    """Create the service's schema if needed and upgrade it, in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{service}"'))
        await conn.run_sync(_upgrade, _config(service), revision)


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
