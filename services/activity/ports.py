"""What activity's use cases need from storage: support events, the team directory, the outbox.

The SQL adapters (adapters/repositories.py) implement these over PostgreSQL inside one
transaction; the unit tests implement them in memory (tests/unit/activity/fakes.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from services.activity.domain import SupportRecord, TeamEntry
from shared.contracts.events.activity import SupportRecorded


class SupportEvents(Protocol):
    async def get_many(self, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, SupportRecord]:
        """Stored events among these ids."""
        ...

    async def add_new(self, records: Sequence[SupportRecord]) -> set[uuid.UUID]:
        """Store records whose event_id is new; the ids actually stored."""
        ...


class TeamDirectory(Protocol):
    async def get_many(self, team_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TeamEntry]: ...

    async def keep_newest(self, entries: Sequence[TeamEntry]) -> int:
        """Store each entry unless a version as new is stored; how many rows changed."""
        ...


class UnitOfWork(Protocol):
    """One transaction: the repositories read and write in it, `publish` queues events in it."""

    @property
    def support(self) -> SupportEvents: ...

    @property
    def directory(self) -> TeamDirectory: ...

    async def publish(self, events: Sequence[SupportRecorded]) -> None:
        """Queue events in this transaction (the outbox), so they leave only if it commits."""
        ...
