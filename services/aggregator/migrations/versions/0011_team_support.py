"""Each team's support per day and category, so a legacy team's support follows its placement.

Support applied before this migration is in no team's row: it counts on its own map only
until a `cdtt aggregator rebuild` after upgrading recounts it from the streams.
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0011", "0010"

SCHEMA = "aggregator"
SUPPORT_COUNTERS = (
    "events",
    "residents",
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)


def upgrade() -> None:
    op.create_table(
        "team_support",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in SUPPORT_COUNTERS
        ),
        sa.PrimaryKeyConstraint("team_id", "day", "category", name="pk_team_support"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("team_support", schema=SCHEMA)
