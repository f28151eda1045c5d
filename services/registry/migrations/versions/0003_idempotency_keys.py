"""Idempotency keys: the first answer to each keyed write, as shared.web.idempotency defines it."""

from alembic import op

from shared.web.idempotency import create_idempotency_keys

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    create_idempotency_keys(op, "registry")


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema="registry")
