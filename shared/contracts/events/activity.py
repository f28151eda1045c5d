"""Contracts of activity.events.v1: support work done by teams."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.envelope import Contract, Envelope
from shared.contracts.streams import ACTIVITY_EVENTS

Category = Literal[
    "vneid",
    "public_services",
    "cashless_payment",
    "ecommerce",
    "digital_skills",
    "online_safety",
    "other",
]
CATEGORIES: tuple[Category, ...] = (
    "vneid",
    "public_services",
    "cashless_payment",
    "ecommerce",
    "digital_skills",
    "online_safety",
    "other",
)


class SupportState(Contract):
    team_id: uuid.UUID
    unit_code: str
    occurred_on: date
    category: Category
    residents_helped: int = Field(ge=1, le=10_000)


class SupportRecorded(Envelope):
    stream: ClassVar[str] = ACTIVITY_EVENTS
    producer_name: ClassVar[str] = "activity"

    type: Literal["support.recorded"] = "support.recorded"
    payload: SupportState


ActivityEvent = SupportRecorded
