"""Idempotency keys are each province's own: the store is keyed by (scope, key)."""

from alembic import op

from shared.web.idempotency import scope_idempotency_keys, unscope_idempotency_keys

revision, down_revision = "0008", "0007"


def upgrade() -> None:
    scope_idempotency_keys(op, "registry")


def downgrade() -> None:
    unscope_idempotency_keys(op, "registry")
