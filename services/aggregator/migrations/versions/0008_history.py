"""History by business date: figures and support per unit and day, each team's dates.

Teams stored before this migration carry no dates and added nothing to the history: a
`cdtt aggregator rebuild` after upgrading fills the history from the streams.
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0008", "0007"

SCHEMA = "aggregator"
HISTORY_COUNTERS = (
    "teams",
    "members",
    "members_trained",
    "direct_teams",
    "covered_province",
    "covered_district",
    "covered_commune",
    "covered_village",
    "unplaced_teams",
    "unplaced_members",
)
SUPPORT_COUNTERS = (
    "events",
    "residents",
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)


def _counters(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.BigInteger(), nullable=False, server_default="0") for n in names]


def upgrade() -> None:
    op.create_table(
        "figures_by_day",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_counters(HISTORY_COUNTERS),
        sa.PrimaryKeyConstraint("edition", "code", "day", name="pk_figures_by_day"),
        schema=SCHEMA,
    )
    op.create_table(
        "support_by_day",
        sa.Column("edition", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        *_counters(SUPPORT_COUNTERS),
        sa.PrimaryKeyConstraint("edition", "code", "day", "category", name="pk_support_by_day"),
        schema=SCHEMA,
    )
    op.add_column("team_states", sa.Column("established_on", sa.Date()), schema=SCHEMA)
    op.add_column("team_states", sa.Column("dissolved_on", sa.Date()), schema=SCHEMA)
    op.add_column(
        "team_states",
        sa.Column("member_steps", sa.Text(), nullable=False, server_default="[]"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for name in ("member_steps", "dissolved_on", "established_on"):
        op.drop_column("team_states", name, schema=SCHEMA)
    op.drop_table("support_by_day", schema=SCHEMA)
    op.drop_table("figures_by_day", schema=SCHEMA)
