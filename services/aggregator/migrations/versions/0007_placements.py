"""The 2025 reform: teams waiting for a placement per unit, and each team's placements."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0007", "0006"

SCHEMA = "aggregator"
COUNTERS = ("unplaced_teams", "unplaced_members")


def upgrade() -> None:
    for name in COUNTERS:
        op.add_column(
            "figures",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"),
            schema=SCHEMA,
        )
    op.add_column(
        "team_states",
        sa.Column("placements", sa.Text(), nullable=False, server_default="[]"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("team_states", "placements", schema=SCHEMA)
    for name in COUNTERS:
        op.drop_column("figures", name, schema=SCHEMA)
