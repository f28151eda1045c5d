"""The envelope every stream entry carries: identity, time, producer, edition and unit path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.units import Edition, UnitPath


class Contract(BaseModel):
    """Base of every model that crosses a service boundary: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(Contract):
    """One event as it travels on a stream. Subclasses pin `type` and `payload`."""

    stream: ClassVar[str]
    producer_name: ClassVar[str]

    event_id: uuid.UUID
    type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime
    producer: str
    edition: Edition
    # Province first, the unit itself last: consumers roll figures up without a join.
    unit_path: UnitPath = Field(min_length=1, max_length=4)
    payload: Contract
    # Who caused the event (an API key id), never a secret; None for system work.
    actor: str | None = None

    @classmethod
    def new(
        cls,
        *,
        edition: Edition,
        unit_path: UnitPath,
        payload: Any,
        actor: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        return cls(
            event_id=event_id or uuid.uuid4(),
            type=cls.model_fields["type"].default,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=cls.producer_name,
            edition=edition,
            unit_path=unit_path,
            payload=payload,
            actor=actor,
        )

    def to_json(self) -> str:
        return self.model_dump_json()
