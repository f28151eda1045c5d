"""Targets: each unit's newest target (coverage, training, outcomes, due date)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision, down_revision = "0007", "0006"

SCHEMA = "registry"


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
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("edition", "code", name="pk_targets"),
        sa.ForeignKeyConstraint(
            ["edition", "code"],
            [f"{SCHEMA}.units.edition", f"{SCHEMA}.units.code"],
            name="fk_targets_unit",
        ),
        sa.CheckConstraint("version >= 1", name="ck_targets_version"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("targets", schema=SCHEMA)
