"""In-memory stand-ins for activity's repositories and unit of work, and builders (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.activity.domain import Submission, SupportRecord, TeamEntry
from shared.contracts.events.activity import SupportRecorded


@dataclass
class FakeSupportEvents:
    rows: dict[uuid.UUID, SupportRecord] = field(default_factory=dict)
    # Records "another request" stores between our read and our insert.
    stored_meanwhile: list[SupportRecord] = field(default_factory=list)

    async def get_many(self, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, SupportRecord]:
        return {i: self.rows[i] for i in event_ids if i in self.rows}

    async def add_new(self, records: Sequence[SupportRecord]) -> set[uuid.UUID]:
        for record in self.stored_meanwhile:
            self.rows.setdefault(record.event_id, record)
        added = set()
        for record in records:
            if record.event_id not in self.rows:
                self.rows[record.event_id] = record
                added.add(record.event_id)
        return added


@dataclass
class FakeTeamDirectory:
    rows: dict[uuid.UUID, TeamEntry] = field(default_factory=dict)

    async def get_many(self, team_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TeamEntry]:
        return {i: self.rows[i] for i in team_ids if i in self.rows}

    async def keep_newest(self, entries: Sequence[TeamEntry]) -> int:
        changed = 0
        for entry in entries:
            kept = self.rows.get(entry.team_id)
            if kept is None or kept.version < entry.version:
                self.rows[entry.team_id] = entry
                changed += 1
        return changed


@dataclass
class FakeUnitOfWork:
    support: FakeSupportEvents = field(default_factory=FakeSupportEvents)
    directory: FakeTeamDirectory = field(default_factory=FakeTeamDirectory)
    published: list[SupportRecorded] = field(default_factory=list)

    async def publish(self, events: Sequence[SupportRecorded]) -> None:
        self.published.extend(events)


def entry(**overrides: Any) -> TeamEntry:
    fields: dict[str, Any] = {
        "team_id": uuid.uuid4(),
        "edition": "legacy",
        "unit_code": "04378-001",
        "unit_level": "village",
        "unit_path": ("15", "136", "04378", "04378-001"),
        "status": "active",
        "version": 1,
    }
    return TeamEntry(**(fields | overrides))


def submission(team: TeamEntry, **overrides: Any) -> Submission:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "team_id": team.team_id,
        "occurred_on": date(2024, 5, 20),
        "category": "vneid",
        "residents_helped": 12,
    }
    return Submission(**(fields | overrides))
