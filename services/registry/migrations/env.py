"""Alembic environment of the registry schema."""

from services.registry.adapters.tables import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
