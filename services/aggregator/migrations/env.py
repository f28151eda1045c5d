"""Alembic environment of the aggregator schema."""

from services.aggregator.adapters.tables import metadata
from shared.runtime.migrations import run_env

run_env(metadata)
