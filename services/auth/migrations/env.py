"""Alembic environment of the auth schema (API keys)."""

from services.auth.adapters.tables import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
