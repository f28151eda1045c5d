"""Units keep their centre (lat/lon from unit.registered schema 2) for the dashboard's map."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0004", "0003"

SCHEMA = "aggregator"


def upgrade() -> None:
    op.add_column("units", sa.Column("lat", sa.Double(), nullable=True), schema=SCHEMA)
    op.add_column("units", sa.Column("lon", sa.Double(), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("units", "lon", schema=SCHEMA)
    op.drop_column("units", "lat", schema=SCHEMA)
