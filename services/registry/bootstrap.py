"""Composition root of the registry: its routes and rule errors on the producer runtime.

The runtime (shared.runtime.producer) builds the engine, Redis, the outbox relay and the
housekeeping in the lifespan, and the context the registry's routes read.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.auth.bootstrap import authenticator_scope
from services.registry.adapters.repositories import unit_of_work
from services.registry.adapters.tables import metadata
from services.registry.entrypoints.http import ERROR_STATUS, router
from shared.runtime.producer import ProducerApp, create_producer_app
from shared.runtime.settings import Settings

REGISTRY = ProducerApp(
    service="registry",
    description="Administrative units, villages, teams and members; "
    "publishes registry.events.v1 through a transactional outbox.",
    routers=[router],
    error_status=ERROR_STATUS,
    unit_of_work=unit_of_work,
    metadata=metadata,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The registry app; nothing connects until the lifespan starts."""
    return create_producer_app(REGISTRY, authenticator_scope, settings)
