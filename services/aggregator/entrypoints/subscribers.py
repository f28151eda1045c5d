"""Both streams → the projections: the consumer group "aggregator" hands each batch to apply_batch.

A handler is one transaction: the projection changes and the processed event_ids commit
together, and only then does the GroupConsumer XACK the entries. A process killed
anywhere before the commit leaves the entries pending for the reclaimer and changes
nothing; one killed after it makes the redelivery a no-op (the event_ids are recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import AppliedBatch, apply_batch
from shared.consumer import EventBatchHandler, GroupConsumer
from shared.events import Event
from shared.faults import crash_point
from shared.settings import Settings
from shared.streams import ACTIVITY_EVENTS, AGGREGATOR_GROUP, REGISTRY_EVENTS

log = logging.getLogger(__name__)


async def apply_from_stream(
    engine: AsyncEngine, stream: str, events: Sequence[Event]
) -> AppliedBatch:
    async with projection_store(engine) as store:
        applied = await apply_batch(store, stream, events)
        crash_point("aggregator.before_commit")
    crash_point("aggregator.after_commit")
    if applied.applied < applied.received:
        log.debug(
            "skipped %d events already applied",
            applied.received - applied.applied,
            extra={"stream": stream, "count": applied.received - applied.applied},
        )
    return applied


def projection_handlers(engine: AsyncEngine) -> dict[str, EventBatchHandler]:
    async def on_registry_events(events: Sequence[Event]) -> None:
        """unit.registered, team.created, team.members_changed, team.dissolved."""
        await apply_from_stream(engine, REGISTRY_EVENTS, events)

    async def on_activity_events(events: Sequence[Event]) -> None:
        """support.recorded."""
        await apply_from_stream(engine, ACTIVITY_EVENTS, events)

    return {REGISTRY_EVENTS: on_registry_events, ACTIVITY_EVENTS: on_activity_events}


def aggregator_consumer(settings: Settings, engine: AsyncEngine) -> GroupConsumer:
    return GroupConsumer(
        redis_url=settings.require_redis_url(),
        group=AGGREGATOR_GROUP,
        handlers=projection_handlers(engine),
        namespace=settings.stream_namespace,
        batch_size=settings.consumer_batch_size,
        reclaim_idle_ms=settings.reclaim_idle_ms,
        max_deliveries=settings.max_deliveries,
    )
