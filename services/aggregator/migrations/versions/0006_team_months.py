"""Reporting: the months in which each team recorded support."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0006", "0005"

SCHEMA = "aggregator"


def upgrade() -> None:
    op.create_table(
        "team_months",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "month", name="pk_team_months"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("team_months", schema=SCHEMA)
