"""Units of both editions, teams and their members."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision, down_revision = "0002", "0001"

SCHEMA = "registry"


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column("path", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("edition", "code", name="pk_units"),
        sa.ForeignKeyConstraint(
            ["edition", "parent_code"],
            [f"{SCHEMA}.units.edition", f"{SCHEMA}.units.code"],
            name="fk_units_parent",
        ),
        sa.CheckConstraint("edition IN ('2025', 'legacy')", name="ck_units_edition"),
        sa.CheckConstraint(
            "level IN ('province', 'district', 'commune', 'village')", name="ck_units_level"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_units_parent", "units", ["edition", "parent_code"], schema=SCHEMA)
    op.create_index("ix_units_level", "units", ["edition", "level"], schema=SCHEMA)

    op.create_table(
        "teams",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("team_id", name="pk_teams"),
        sa.ForeignKeyConstraint(
            ["edition", "unit_code"],
            [f"{SCHEMA}.units.edition", f"{SCHEMA}.units.code"],
            name="fk_teams_unit",
        ),
        sa.CheckConstraint("status IN ('active', 'dissolved')", name="ck_teams_status"),
        sa.CheckConstraint("version >= 1", name="ck_teams_version"),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_teams_one_active_per_unit",
        "teams",
        ["edition", "unit_code"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_teams_unit", "teams", ["edition", "unit_code"], schema=SCHEMA)

    op.create_table(
        "members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name="pk_members"),
        sa.ForeignKeyConstraint(
            ["team_id"], [f"{SCHEMA}.teams.team_id"], name="fk_members_team", ondelete="CASCADE"
        ),
        sa.CheckConstraint("role IN ('leader', 'deputy', 'member')", name="ck_members_role"),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_members_one_leader",
        "members",
        ["team_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("role = 'leader'"),
    )
    op.create_index("ix_members_team", "members", ["team_id", "seq"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("members", schema=SCHEMA)
    op.drop_table("teams", schema=SCHEMA)
    op.drop_table("units", schema=SCHEMA)
