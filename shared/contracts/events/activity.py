"""Contracts of activity.events.v1: support work done by teams."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field, model_validator

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


OutcomeKind = Literal[
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
]
# A closed set, so the contract stays checkable: a new kind comes with a new schema version.
OUTCOME_KINDS: tuple[OutcomeKind, ...] = (
    "vneid_activations",
    "public_service_dossiers",
    "payment_accounts",
    "ecommerce_accounts",
    "other_accounts",
)
# Each kind counts at most this many per resident helped (an account of each of a few sorts).
OUTCOMES_PER_RESIDENT = 3


class Outcomes(Contract):
    """What a piece of support produced, counted by kind; a kind not given is zero."""

    vneid_activations: int = Field(default=0, ge=0)
    public_service_dossiers: int = Field(default=0, ge=0)
    payment_accounts: int = Field(default=0, ge=0)
    ecommerce_accounts: int = Field(default=0, ge=0)
    other_accounts: int = Field(default=0, ge=0)

    def counts(self) -> tuple[int, ...]:
        """The counts in OUTCOME_KINDS order."""
        return (
            self.vneid_activations,
            self.public_service_dossiers,
            self.payment_accounts,
            self.ecommerce_accounts,
            self.other_accounts,
        )


NO_OUTCOMES = Outcomes()


class SupportState(Contract):
    team_id: uuid.UUID
    unit_code: str
    occurred_on: date
    category: Category
    residents_helped: int = Field(ge=1, le=10_000)
    # Since schema version 2; version 1 events carry none and count as zeros.
    outcomes: Outcomes = NO_OUTCOMES

    @model_validator(mode="after")
    def _outcomes_within_bounds(self) -> SupportState:
        limit = self.residents_helped * OUTCOMES_PER_RESIDENT
        for kind, count in zip(OUTCOME_KINDS, self.outcomes.counts(), strict=True):
            if count > limit:
                raise ValueError(
                    f"outcomes.{kind} = {count} exceeds residents_helped x "
                    f"{OUTCOMES_PER_RESIDENT} = {limit}"
                )
        return self


class SupportRecorded(Envelope):
    stream: ClassVar[str] = ACTIVITY_EVENTS
    producer_name: ClassVar[str] = "activity"

    type: Literal["support.recorded"] = "support.recorded"
    # 2: the payload may carry `outcomes`; version 1 entries still decode (outcomes zero).
    schema_version: int = Field(default=2, ge=1, le=2)
    payload: SupportState


ActivityEvent = SupportRecorded
