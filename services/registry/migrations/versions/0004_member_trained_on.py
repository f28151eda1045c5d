"""Members trained: the day each member finished the programme's training, if they have."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0004", "0003"

SCHEMA = "registry"


def upgrade() -> None:
    op.add_column("members", sa.Column("trained_on", sa.Date(), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("members", "trained_on", schema=SCHEMA)
