"""Activity's team directory, fed by registry.events.v1 in consumer group "activity".

The GroupConsumer (shared.messaging.consumer) hands each batch to `directory_handler`, which turns
every team event into the team's directory entry and keeps the newest version of each
team in one transaction; the consumer acks the entries only after that commit. Team
events carry the whole state and a version, so redelivery and reordering change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.activity import use_cases
from services.activity.adapters.repositories import unit_of_work
from services.activity.domain import TeamEntry
from shared.contracts.events import (
    Event,
    TeamCreated,
    TeamDissolved,
    TeamMembersChanged,
    TeamPlaced,
)
from shared.messaging.consumer import EventBatchHandler

log = logging.getLogger(__name__)


def on_team_created(event: TeamCreated) -> TeamEntry:
    return TeamEntry.of(event.edition, event.unit_path, event.payload)


def on_team_members_changed(event: TeamMembersChanged) -> TeamEntry:
    # Only the version moves: members do not matter to activity, but a later version
    # must still win over an earlier one that arrives after it.
    return TeamEntry.of(event.edition, event.unit_path, event.payload)


def on_team_dissolved(event: TeamDissolved) -> TeamEntry:
    return TeamEntry.of(event.edition, event.unit_path, event.payload)


def on_team_placed(event: TeamPlaced) -> TeamEntry:
    # Where a team counts on the other map does not matter to activity; its version does.
    return TeamEntry.of(event.edition, event.unit_path, event.payload)


# The reaction table: which registry event moves the directory, at a glance.
# unit.registered is not here: activity needs teams, not units.
REACTIONS: dict[str, Callable[[Any], TeamEntry]] = {
    "team.created": on_team_created,
    "team.members_changed": on_team_members_changed,
    "team.dissolved": on_team_dissolved,
    "team.placed": on_team_placed,
}


def directory_entries(events: Sequence[Event]) -> list[TeamEntry]:
    """The directory entries a batch of registry events carries; other events are ignored."""
    return [REACTIONS[event.type](event) for event in events if event.type in REACTIONS]


def directory_handler(sessionmaker: async_sessionmaker[AsyncSession]) -> EventBatchHandler:
    """The batch handler the GroupConsumer calls for registry.events.v1."""

    async def apply_registry_events(events: Sequence[Event]) -> None:
        entries = directory_entries(events)
        if not entries:
            return
        async with unit_of_work(sessionmaker) as uow:
            changed = await use_cases.update_directory(uow, entries)
        log.debug("team directory: %d entries, %d rows changed", len(entries), changed)

    return apply_registry_events
