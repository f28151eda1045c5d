"""API keys: hashed secrets, role, optional province, revocation time."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0001", None

SCHEMA = "auth"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("edition", sa.Text(), nullable=True),
        sa.Column("province_code", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('publisher', 'operator', 'admin')", name="ck_api_keys_role"),
        sa.CheckConstraint(
            "(edition IS NULL) = (province_code IS NULL)", name="ck_api_keys_province_has_edition"
        ),
        sa.CheckConstraint(
            "role <> 'publisher' OR province_code IS NOT NULL",
            name="ck_api_keys_publisher_province",
        ),
        sa.CheckConstraint(
            "role <> 'admin' OR province_code IS NULL", name="ck_api_keys_admin_everywhere"
        ),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("api_keys", schema=SCHEMA)
