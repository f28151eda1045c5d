"""Tables of the registry schema: its state and the outbox its events leave through."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.outbox import outbox_table
from shared.runtime.db import service_metadata
from shared.web.idempotency import idempotency_table

metadata = service_metadata("registry")
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

# Units of both editions side by side: a code means something else in each edition.
units = Table(
    "units",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("parent_code", Text, nullable=True),
    # Province first, the unit itself last (what every event carries as unit_path).
    Column("path", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["edition", "parent_code"],
        ["units.edition", "units.code"],
        name="fk_units_parent",
    ),
    CheckConstraint("edition IN ('2025', 'legacy')", name="edition"),
    CheckConstraint("level IN ('province', 'district', 'commune', 'village')", name="level"),
    Index("ix_units_parent", "edition", "parent_code"),
    Index("ix_units_level", "edition", "level"),
)

teams = Table(
    "teams",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("edition", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("name", Text, nullable=True),
    Column("established_on", Date, nullable=True),
    Column("dissolved_on", Date, nullable=True),
    Column("status", Text, nullable=False),
    # Grows by one with every change; the version its event carries.
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["edition", "unit_code"], ["units.edition", "units.code"], name="fk_teams_unit"
    ),
    CheckConstraint("status IN ('active', 'dissolved')", name="status"),
    CheckConstraint("version >= 1", name="version"),
    # The programme's rule, kept by the database too: one active team per unit.
    Index(
        "uq_teams_one_active_per_unit",
        "edition",
        "unit_code",
        unique=True,
        postgresql_where=text("status = 'active'"),
    ),
    Index("ix_teams_unit", "edition", "unit_code"),
)

members = Table(
    "members",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("team_id", Uuid, nullable=False),
    Column("full_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("phone", Text, nullable=True),
    Column("trained_on", Date, nullable=True),
    Column("joined_on", Date, nullable=True),
    # Set when the member was removed: the row stays, so the team's history stays whole.
    Column("left_on", Date, nullable=True),
    # Keeps members in the order they joined.
    Column("seq", BigInteger, Identity(), nullable=False),
    ForeignKeyConstraint(
        ["team_id"], ["teams.team_id"], name="fk_members_team", ondelete="CASCADE"
    ),
    CheckConstraint("role IN ('leader', 'deputy', 'member')", name="role"),
    Index(
        "uq_members_one_current_leader",
        "team_id",
        unique=True,
        postgresql_where=text("role = 'leader' AND left_on IS NULL"),
    ),
    Index("ix_members_team", "team_id", "seq"),
)

# The reform's crosswalk as codes (either edition may be loaded first): province and
# commune rows from the official table, village rows made when a legacy village is
# carried onto the 2025 map.
unit_links = Table(
    "unit_links",
    metadata,
    Column("level", Text, primary_key=True),
    Column("legacy_code", Text, primary_key=True),
    Column("new_code", Text, primary_key=True),
    Column("partly", Boolean, nullable=False),
    CheckConstraint("level IN ('province', 'commune', 'village')", name="level"),
    Index("ix_unit_links_new", "level", "new_code"),
)

# Where a team counts in an edition other than its own (TeamState.placements).
team_placements = Table(
    "team_placements",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("edition", Text, primary_key=True),
    # Province first; the province alone when the team covers no unit there.
    Column("unit_path", ARRAY(Text), nullable=False),
    Column("unit_level", Text, nullable=True),
    Column("placed", Boolean, nullable=False),
    ForeignKeyConstraint(
        ["team_id"], ["teams.team_id"], name="fk_team_placements_team", ondelete="CASCADE"
    ),
    CheckConstraint("edition IN ('2025', 'legacy')", name="edition"),
    # Operators list a province's teams awaiting a placement.
    Index("ix_team_placements_waiting", "edition", text("(unit_path[1])"), "placed"),
)

# Each unit's newest target (services/registry/targets.py); a PUT replaces the whole row.
targets = Table(
    "targets",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("due", Date, nullable=True),
    # {"commune": 100, "village": 90}: percent per level below the unit.
    Column("covered_pct", JSONB, nullable=False),
    Column("members_trained_pct", Double, nullable=True),
    # {"vneid_activations": 50000}: totals per outcome kind.
    Column("outcomes", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["edition", "code"], ["units.edition", "units.code"], name="fk_targets_unit"
    ),
    CheckConstraint("version >= 1", name="version"),
)
