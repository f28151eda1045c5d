"""Alembic environment of the auth schema (API keys)."""

from shared.auth.tables import metadata
from shared.migrations import run_env

run_env(metadata)
