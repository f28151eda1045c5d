"""Members trained: a counter on every figures row, and each team's trained count."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0005", "0004"

SCHEMA = "aggregator"


def upgrade() -> None:
    op.add_column(
        "figures",
        sa.Column("members_trained", sa.BigInteger(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.add_column(
        "team_states",
        sa.Column("trained_count", sa.Integer(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("team_states", "trained_count", schema=SCHEMA)
    op.drop_column("figures", "members_trained", schema=SCHEMA)
