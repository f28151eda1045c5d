"""Tables of the aggregator schema: projections and the processed-event inbox."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Table, Text, Uuid, func

from shared.db import service_metadata

metadata = service_metadata("aggregator")

# An event_id here means its effect is already in the projections (same transaction).
processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("stream", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
