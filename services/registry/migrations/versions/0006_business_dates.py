"""Business dates: teams' dissolved_on, members' joined_on/left_on; removed members are kept."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0006", "0005"

SCHEMA = "registry"


def upgrade() -> None:
    op.add_column("teams", sa.Column("dissolved_on", sa.Date(), nullable=True), schema=SCHEMA)
    op.add_column("members", sa.Column("joined_on", sa.Date(), nullable=True), schema=SCHEMA)
    op.add_column("members", sa.Column("left_on", sa.Date(), nullable=True), schema=SCHEMA)
    # Rows from before dates existed are dated as their events are read: on the day (in
    # Vietnam, UTC+7) the registry recorded them.
    op.execute(
        "UPDATE registry.teams SET established_on = (created_at AT TIME ZONE '+07')::date"
        " WHERE established_on IS NULL"
    )
    op.execute(
        "UPDATE registry.teams SET dissolved_on = (updated_at AT TIME ZONE '+07')::date"
        " WHERE status = 'dissolved' AND dissolved_on IS NULL"
    )
    op.execute(
        "UPDATE registry.members m SET joined_on = t.established_on FROM registry.teams t"
        " WHERE t.team_id = m.team_id AND m.joined_on IS NULL"
    )
    # Removed members stay as rows with left_on, so only current leaders are unique.
    op.drop_index("uq_members_one_leader", table_name="members", schema=SCHEMA)
    op.create_index(
        "uq_members_one_current_leader",
        "members",
        ["team_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("role = 'leader' AND left_on IS NULL"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM registry.members WHERE left_on IS NOT NULL")
    op.drop_index("uq_members_one_current_leader", table_name="members", schema=SCHEMA)
    op.create_index(
        "uq_members_one_leader",
        "members",
        ["team_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("role = 'leader'"),
    )
    op.drop_column("members", "left_on", schema=SCHEMA)
    op.drop_column("members", "joined_on", schema=SCHEMA)
    op.drop_column("teams", "dissolved_on", schema=SCHEMA)
