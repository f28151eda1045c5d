"""Support events, the team directory, and Idempotency-Key answers."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.web.idempotency import create_idempotency_keys

revision, down_revision = "0002", "0001"

SCHEMA = "activity"


def upgrade() -> None:
    op.create_table(
        "support_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("unit_path", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("residents_helped", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("event_id", name="pk_support_events"),
        sa.CheckConstraint(
            "residents_helped BETWEEN 1 AND 10000", name="ck_support_events_residents_helped"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_support_events_team_id", "support_events", ["team_id"], schema=SCHEMA)
    op.create_table(
        "team_directory",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("unit_level", sa.Text(), nullable=False),
        sa.Column("unit_path", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("team_id", name="pk_team_directory"),
        schema=SCHEMA,
    )
    create_idempotency_keys(op, SCHEMA)


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.drop_table("team_directory", schema=SCHEMA)
    op.drop_table("support_events", schema=SCHEMA)
