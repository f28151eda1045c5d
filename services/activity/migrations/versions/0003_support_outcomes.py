"""Outcomes of support: one count per kind on every support event, zero for older ones."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0003", "0002"

SCHEMA = "activity"
# Spelled out, not imported: a migration keeps the columns it created even if the contract grows.
KINDS = (
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)


def upgrade() -> None:
    for kind in KINDS:
        op.add_column(
            "support_events",
            sa.Column(kind, sa.Integer(), nullable=False, server_default="0"),
            schema=SCHEMA,
        )


def downgrade() -> None:
    for kind in KINDS:
        op.drop_column("support_events", kind, schema=SCHEMA)
