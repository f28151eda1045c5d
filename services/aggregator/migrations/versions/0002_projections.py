"""The aggregator's projections: units, figures per unit and nation, support splits, team states."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0002", "0001"

SCHEMA = "aggregator"
COUNTERS = (
    "teams",
    "members",
    "direct_teams",
    "covered_province",
    "covered_district",
    "covered_commune",
    "covered_village",
    "total_province",
    "total_district",
    "total_commune",
    "total_village",
    "support_events",
    "support_residents",
)


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column("path", sa.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("edition", "code", name="pk_units"),
        schema=SCHEMA,
    )
    op.create_index("ix_units_parent", "units", ["edition", "parent_code", "code"], schema=SCHEMA)
    op.create_table(
        "figures",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in COUNTERS
        ),
        sa.PrimaryKeyConstraint("edition", "code", name="pk_figures"),
        schema=SCHEMA,
    )
    for split, bucket in (("support_by_category", "category"), ("support_by_month", "month")):
        op.create_table(
            split,
            sa.Column("edition", sa.Text(), nullable=False),
            sa.Column("code", sa.Text(), nullable=False),
            sa.Column(bucket, sa.Text(), nullable=False),
            sa.Column("events", sa.BigInteger(), nullable=False),
            sa.Column("residents", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("edition", "code", bucket, name=f"pk_{split}"),
            schema=SCHEMA,
        )
    op.create_table(
        "team_states",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("unit_path", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("unit_level", sa.Text(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'dissolved')", name="ck_team_states_status"),
        sa.PrimaryKeyConstraint("team_id", name="pk_team_states"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("team_states", "support_by_month", "support_by_category", "figures"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_index("ix_units_parent", table_name="units", schema=SCHEMA)
    op.drop_table("units", schema=SCHEMA)
