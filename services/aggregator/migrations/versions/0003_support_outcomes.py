"""Outcomes of support: per-kind totals on every figures row and in both support splits."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0003", "0002"

SCHEMA = "aggregator"
# Spelled out, not imported: a migration keeps the columns it created even if the contract grows.
KINDS = (
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)
TABLES = ("figures", "support_by_category", "support_by_month")


def upgrade() -> None:
    for table in TABLES:
        for kind in KINDS:
            op.add_column(
                table,
                sa.Column(kind, sa.BigInteger(), nullable=False, server_default="0"),
                schema=SCHEMA,
            )


def downgrade() -> None:
    for table in TABLES:
        for kind in KINDS:
            op.drop_column(table, kind, schema=SCHEMA)
