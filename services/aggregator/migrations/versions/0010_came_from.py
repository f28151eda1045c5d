"""2025 units keep the legacy units they came from (unit.registered schema 3), for the dashboard."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0010", "0009"

SCHEMA = "aggregator"


def upgrade() -> None:
    op.add_column(
        "units",
        sa.Column("came_from", sa.Text(), nullable=False, server_default="[]"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("units", "came_from", schema=SCHEMA)
