"""Targets: each unit's newest target, shown against its figures."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision, down_revision = "0009", "0008"

SCHEMA = "aggregator"


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("covered_pct", JSONB(), nullable=False),
        sa.Column("members_trained_pct", sa.Double(), nullable=True),
        sa.Column("outcomes", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("edition", "code", name="pk_targets"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("targets", schema=SCHEMA)
