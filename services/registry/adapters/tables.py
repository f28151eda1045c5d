"""Tables of the registry schema: its state and the outbox its events leave through."""

from __future__ import annotations

from shared.db import service_metadata
from shared.outbox import outbox_table

metadata = service_metadata("registry")
outbox = outbox_table(metadata)
