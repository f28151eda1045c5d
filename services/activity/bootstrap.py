"""Composition root of activity: routes, rule errors and the team directory on the producer runtime.

The runtime (shared.runtime.producer) builds the engine, Redis, the outbox relay and the
housekeeping in the lifespan, and the context activity's routes read; activity adds its
team-directory consumer, which readiness watches: a stopped consumer would leave the
directory stale while the service kept answering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.activity.adapters.repositories import unit_of_work
from services.activity.adapters.tables import metadata
from services.activity.entrypoints.http import ERROR_STATUS, router
from services.activity.entrypoints.subscribers import directory_handler
from services.auth.bootstrap import authenticator_scope
from shared.contracts.streams import ACTIVITY_GROUP, REGISTRY_EVENTS
from shared.messaging.consumer import GroupConsumer
from shared.runtime.producer import ProducerApp, ProducerRuntime, create_producer_app
from shared.runtime.settings import Settings


@asynccontextmanager
async def team_directory(app: FastAPI, runtime: ProducerRuntime) -> AsyncIterator[None]:
    """Activity's copy of the teams, fed by registry.events.v1 (consumer group "activity")."""
    consumer = GroupConsumer.from_settings(
        runtime.settings,
        group=ACTIVITY_GROUP,
        handlers={REGISTRY_EVENTS: directory_handler(runtime.sessionmaker)},
    )
    app.state.team_directory = consumer
    runtime.watch("team_directory_consumer", consumer.healthy)
    try:
        await consumer.start()
        yield
    finally:
        await consumer.stop()


ACTIVITY = ProducerApp(
    service="activity",
    description="Support work done by Community Digital Technology Teams, recorded "
    "one by one or in batches and published on activity.events.v1 through a "
    "transactional outbox. Keeps its own team directory from registry.events.v1.",
    routers=[router],
    error_status=ERROR_STATUS,
    unit_of_work=unit_of_work,
    metadata=metadata,
    workers=team_directory,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The activity app; nothing connects until the lifespan starts."""
    return create_producer_app(ACTIVITY, authenticator_scope, settings)
