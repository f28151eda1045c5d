"""The registry outbox, as shared.messaging.outbox defines it."""

from alembic import op

from shared.messaging.outbox import create_outbox

revision, down_revision = "0001", None


def upgrade() -> None:
    create_outbox(op, "registry")


def downgrade() -> None:
    op.drop_table("outbox", schema="registry")
