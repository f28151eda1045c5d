"""Alembic environment of the activity schema."""

from services.activity.adapters.tables import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
