"""Both streams → the projections: the consumer group "aggregator" hands each batch to apply_batch.

A handler is one transaction: the projection changes and the processed event_ids commit
together, and only then does the GroupConsumer XACK the entries. A process killed
anywhere before the commit leaves the entries pending for the reclaimer and changes
nothing; one killed after it makes the redelivery a no-op (the event_ids are recorded).
An event for a unit not registered is held back and retried; if its unit is still
unknown once the registry stream has been read, it goes to the dead-letter stream after
max_deliveries tries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import AppliedBatch, apply_batch
from shared.contracts.events import Event
from shared.contracts.streams import ACTIVITY_EVENTS, AGGREGATOR_GROUP, REGISTRY_EVENTS
from shared.messaging.consumer import EventBatchHandler, GroupConsumer
from shared.messaging.delivery import HeldBackError
from shared.runtime.faults import crash_point
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)


async def apply_from_stream(
    engine: AsyncEngine,
    stream: str,
    events: Sequence[Event],
    registry_read: Callable[[], Awaitable[bool]],
) -> AppliedBatch:
    async with projection_store(engine) as store:
        applied = await apply_batch(store, stream, events, require_known_units=True)
        crash_point("aggregator.before_commit")
    crash_point("aggregator.after_commit")
    skipped = applied.received - len(applied.held_back) - applied.applied
    if skipped:
        log.debug(
            "skipped %d events already applied",
            skipped,
            extra={"stream": stream, "count": skipped},
        )
    if applied.held_back:
        # The rest is committed and acknowledged; these are retried by the reclaimer. While
        # the registry stream is still being read their unit may yet come: such a try does
        # not count towards max_deliveries.
        units = sorted({f"{e.edition} {'/'.join(e.unit_path)}" for e in applied.held_back})
        raise HeldBackError(
            f"{len(applied.held_back)} events for units not registered: {units[:5]}",
            {e.event_id for e in applied.held_back},
            counts=await registry_read(),
        )
    return applied


def projection_handlers(
    engine: AsyncEngine, registry_read: Callable[[], Awaitable[bool]]
) -> dict[str, EventBatchHandler]:
    async def on_registry_events(events: Sequence[Event]) -> None:
        """unit.registered, team.created, team.members_changed, team.dissolved."""
        await apply_from_stream(engine, REGISTRY_EVENTS, events, registry_read)

    async def on_activity_events(events: Sequence[Event]) -> None:
        """support.recorded."""
        await apply_from_stream(engine, ACTIVITY_EVENTS, events, registry_read)

    return {REGISTRY_EVENTS: on_registry_events, ACTIVITY_EVENTS: on_activity_events}


def aggregator_consumer(settings: Settings, engine: AsyncEngine) -> GroupConsumer:
    async def registry_read() -> bool:
        return await consumer.delivered_all(REGISTRY_EVENTS)

    consumer = GroupConsumer.from_settings(
        settings, group=AGGREGATOR_GROUP, handlers=projection_handlers(engine, registry_read)
    )
    return consumer
