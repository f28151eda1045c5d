"""Tables of the activity schema: support events, the team directory, keys, and the outbox."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from shared.contracts.events.activity import OUTCOME_KINDS
from shared.messaging.outbox import outbox_table
from shared.runtime.db import service_metadata
from shared.web.idempotency import idempotency_table

metadata = service_metadata("activity")
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

# One row per accepted support event; event_id (the client's, or generated) is the natural
# key that makes a resent event a duplicate instead of a second record.
support_events = Table(
    "support_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("team_id", Uuid, nullable=False),
    Column("edition", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("unit_path", ARRAY(Text), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("category", Text, nullable=False),
    Column("residents_helped", Integer, nullable=False),
    # One column per outcome kind (zeros for events sent without outcomes): recounts sum them.
    *(Column(kind, Integer, nullable=False, server_default="0") for kind in OUTCOME_KINDS),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("residents_helped BETWEEN 1 AND 10000", name="residents_helped"),
    Index("ix_support_events_team_id", "team_id"),
)

# Activity's own copy of the teams, from registry.events.v1: newest version per team.
team_directory = Table(
    "team_directory",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("edition", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("unit_level", Text, nullable=False),
    Column("unit_path", ARRAY(Text), nullable=False),
    Column("status", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
