"""The `auth` schema: API keys as every service reads them to authenticate a request."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Table, Text, func

from shared.runtime.db import service_metadata

metadata = service_metadata("auth")

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    # SHA-256 of the whole key, hex; the key itself is shown once and never stored.
    Column("secret_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    # The province a key is bound to (publishers always, operators optionally): its edition
    # and code, since codes are reused between editions with other meanings.
    Column("edition", Text, nullable=True),
    Column("province_code", Text, nullable=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("role IN ('publisher', 'operator', 'admin')", name="role"),
    CheckConstraint("(edition IS NULL) = (province_code IS NULL)", name="province_has_edition"),
    CheckConstraint("role <> 'publisher' OR province_code IS NOT NULL", name="publisher_province"),
    CheckConstraint("role <> 'admin' OR province_code IS NULL", name="admin_everywhere"),
)
