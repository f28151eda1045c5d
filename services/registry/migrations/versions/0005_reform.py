"""The 2025 reform: the crosswalk between the maps, and each team's placement on the other map."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision, down_revision = "0005", "0004"

SCHEMA = "registry"


def upgrade() -> None:
    op.create_table(
        "unit_links",
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("legacy_code", sa.Text(), nullable=False),
        sa.Column("new_code", sa.Text(), nullable=False),
        sa.Column("partly", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("level", "legacy_code", "new_code", name="pk_unit_links"),
        sa.CheckConstraint(
            "level IN ('province', 'commune', 'village')", name="ck_unit_links_level"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_unit_links_new", "unit_links", ["level", "new_code"], schema=SCHEMA)
    op.create_table(
        "team_placements",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("unit_path", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("unit_level", sa.Text(), nullable=True),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "edition", name="pk_team_placements"),
        sa.ForeignKeyConstraint(
            ["team_id"],
            [f"{SCHEMA}.teams.team_id"],
            name="fk_team_placements_team",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("edition IN ('2025', 'legacy')", name="ck_team_placements_edition"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_team_placements_waiting",
        "team_placements",
        ["edition", sa.text("(unit_path[1])"), "placed"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("team_placements", schema=SCHEMA)
    op.drop_table("unit_links", schema=SCHEMA)
