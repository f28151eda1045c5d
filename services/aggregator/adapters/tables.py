"""Tables of the aggregator schema: projections and the processed-event inbox.

Keys make reads cheap: any unit's figures, or an edition's national figures (code ""),
are one primary-key read of `figures`; a unit's children are an index range on `units`.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.aggregator.domain import COUNTERS, HISTORY_COUNTERS, SUPPORT_COUNTERS
from shared.runtime.db import service_metadata

metadata = service_metadata("aggregator")

# An event_id here means its effect is already in the projections (same transaction).
processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("stream", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

units = Table(
    "units",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("parent_code", Text, nullable=True),
    # Province first, the unit itself last.
    Column("path", ARRAY(Text), nullable=False),
    # The unit's centre (WGS 84), for the map; NULL when unit.registered carried none.
    Column("lat", Double, nullable=True),
    Column("lon", Double, nullable=True),
    # A 2025 unit's legacy predecessors from unit.registered (schema 3), as JSON:
    # [{"code", "partly"}]; what a 2025 page lists as "came from".
    Column("came_from", Text, nullable=False, server_default="[]"),
    Index("ix_units_parent", "edition", "parent_code", "code"),
)
# One row per unit (its whole subtree) and one per edition (code "": the nation).
figures = Table(
    "figures",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in COUNTERS),
)


def _support_split(name: str, bucket: str) -> Table:
    """Support counted per unit subtree and per bucket: the same counters, split two ways."""
    return Table(
        name,
        metadata,
        Column("edition", Text, primary_key=True),
        Column("code", Text, primary_key=True),
        Column(bucket, Text, primary_key=True),
        *(
            Column(name, BigInteger, nullable=False, server_default="0")
            for name in SUPPORT_COUNTERS
        ),
    )


support_by_category = _support_split("support_by_category", "category")
# Months read "YYYY-MM", as served.
support_by_month = _support_split("support_by_month", "month")

# History by business date: per unit subtree (and nation, code "") and day, the changes
# dated that day; figures as of a day are the sum of its rows up to that day.
figures_by_day = Table(
    "figures_by_day",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in HISTORY_COUNTERS),
)

# Support per unit subtree, day (occurred_on) and category: support as of a day.
support_by_day = Table(
    "support_by_day",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("category", Text, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in SUPPORT_COUNTERS),
)

# The newest state seen of each team: what it contributes now, so a newer one can
# subtract it. Version 0 marks a row locked for a team whose first event is in flight.
team_states = Table(
    "team_states",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("edition", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("unit_path", ARRAY(Text), nullable=False),
    Column("unit_level", Text, nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("trained_count", Integer, nullable=False, server_default="0"),
    # Its placements on the other map as JSON: [{"edition", "path", "level", "placed"}].
    Column("placements", Text, nullable=False, server_default="[]"),
    # Business dates and its members' dated changes as JSON [[day, members, trained], ...]:
    # what it added to the history (NULL dates: stored before the history, added nothing).
    Column("established_on", Date, nullable=True),
    Column("dissolved_on", Date, nullable=True),
    Column("member_steps", Text, nullable=False, server_default="[]"),
    CheckConstraint("status IN ('active', 'dissolved')", name="status"),
)

# Each team's support per day (occurred_on) and category: what the team's placement on the
# other map counts, and what moves when the team is placed elsewhere.
team_support = Table(
    "team_support",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("category", Text, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in SUPPORT_COUNTERS),
)

# The months in which each team recorded support (by occurred_on): reporting rates.
team_months = Table(
    "team_months",
    metadata,
    Column("team_id", Uuid, primary_key=True),
    Column("month", Text, primary_key=True),
)

# Each unit's newest target (`target.set`), kept by version whatever order events come in.
targets = Table(
    "targets",
    metadata,
    Column("edition", Text, primary_key=True),
    Column("code", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("due", Date, nullable=True),
    # {"commune": 100.0}: percent per level below the unit.
    Column("covered_pct", JSONB, nullable=False),
    Column("members_trained_pct", Double, nullable=True),
    # {"vneid_activations": 50000}: totals per outcome kind.
    Column("outcomes", JSONB, nullable=False),
)

# What `cdtt aggregator rebuild` recomputes into shadow copies and swaps in.
REBUILT_TABLES = (
    "processed_events",
    "units",
    "figures",
    "support_by_category",
    "support_by_month",
    "team_states",
    "team_months",
    "figures_by_day",
    "support_by_day",
    "targets",
    "team_support",
)
