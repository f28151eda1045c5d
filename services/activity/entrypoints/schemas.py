"""What the activity HTTP API accepts and answers: frozen models, unknown fields refused."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from services.activity import domain
from services.activity.use_cases import Outcome, Status
from shared.contracts.events.activity import NO_OUTCOMES, OUTCOMES_PER_RESIDENT, Category, Outcomes
from shared.contracts.units import Edition
from shared.web.app import error_body
from shared.web.limits import check_json_depth

ResidentsHelped = Annotated[
    int,
    # Strict: "12" or true are refused rather than read as numbers.
    Field(
        strict=True,
        ge=domain.MIN_RESIDENTS_HELPED,
        le=domain.MAX_RESIDENTS_HELPED,
        description="residents helped by this piece of work, 1 to 10,000",
    ),
]


class RequestModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


OutcomeCount = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=domain.MAX_RESIDENTS_HELPED * OUTCOMES_PER_RESIDENT,
        description=f"at most residents_helped x {OUTCOMES_PER_RESIDENT}",
    ),
]


class OutcomesIn(RequestModel):
    """What the support produced, by kind (a closed set); a kind left out counts 0."""

    vneid_activations: OutcomeCount = Field(default=0, description="VNeID accounts activated")
    public_service_dossiers: OutcomeCount = Field(
        default=0, description="online public-service dossiers submitted"
    )
    payment_accounts: OutcomeCount = Field(
        default=0, description="cashless payment accounts opened"
    )
    ecommerce_accounts: OutcomeCount = Field(default=0, description="e-commerce accounts opened")
    other_accounts: OutcomeCount = Field(default=0, description="other accounts opened")

    def contract(self) -> Outcomes:
        return Outcomes(**self.model_dump())


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class SupportEventIn(RequestModel):
    """One piece of support work a team did."""

    event_id: uuid.UUID | None = Field(
        default=None,
        description="the idempotency key of this event: send it again and it is recorded "
        "once (the answer says `duplicate: true`); generated when omitted",
    )
    team_id: uuid.UUID
    occurred_on: date = Field(description="from 2021-01-01 to today (Vietnam), ISO date")
    category: Category
    residents_helped: ResidentsHelped
    edition: Edition | None = Field(
        default=None, description="when given, a team of another edition is not known"
    )
    outcomes: OutcomesIn | None = Field(
        default=None,
        description="counts by kind of what this work produced; each at most "
        f"residents_helped x {OUTCOMES_PER_RESIDENT} (422 otherwise)",
    )

    def submission(self, query_edition: Edition | None) -> domain.Submission:
        return domain.Submission(
            event_id=self.event_id or uuid.uuid4(),
            team_id=self.team_id,
            occurred_on=self.occurred_on,
            category=self.category,
            residents_helped=self.residents_helped,
            edition=domain.resolve_edition(query_edition, self.edition),
            outcomes=NO_OUTCOMES if self.outcomes is None else self.outcomes.contract(),
        )


class SupportEventBatchIn(RequestModel):
    # Items are validated one by one (by the route) so one bad item refuses only itself.
    events: Annotated[list[Any], AfterValidator(check_json_depth)] = Field(
        min_length=1,
        description=f"1 to {domain.MAX_BATCH_SIZE:,} support events, each as "
        "POST /v1/support-events takes it; more is refused with 413",
        json_schema_extra={"items": {"$ref": "#/components/schemas/SupportEventIn"}},
    )


class SupportEventOut(ResponseModel):
    event_id: uuid.UUID
    team_id: uuid.UUID
    unit_code: str
    duplicate: bool = Field(
        description="true when this event_id was recorded before (by an earlier request or "
        "earlier in the same batch): nothing new was stored or published"
    )

    @classmethod
    def of(cls, record: domain.SupportRecord, *, duplicate: bool) -> SupportEventOut:
        return cls(
            event_id=record.event_id,
            team_id=record.team_id,
            unit_code=record.unit_code,
            duplicate=duplicate,
        )


class ItemResult(ResponseModel):
    index: int = Field(description="position of the item in `events`, from 0")
    status: Status = Field(
        description="accepted: stored and published now; duplicate: its event_id was "
        "recorded before, nothing new stored; rejected: see `error`"
    )
    event_id: uuid.UUID | None = None
    unit_code: str | None = None
    error: dict[str, Any] | None = Field(
        default=None,
        description="why it was rejected, as the single-event endpoint would say it: "
        "`code` (unknown_team, team_dissolved, validation_error, ...), `message`, details",
    )

    @classmethod
    def of(cls, index: int, outcome: Outcome, *, id_given: bool) -> ItemResult:
        if outcome.error is not None:
            # A refused item names the event_id it was sent with, never one made up for it.
            given = outcome.event_id if id_given else None
            return cls.refused(index, outcome.error, event_id=given)
        return cls(
            index=index,
            status=outcome.status,
            event_id=outcome.event_id,
            unit_code=None if outcome.record is None else outcome.record.unit_code,
        )

    @classmethod
    def refused(
        cls, index: int, error: domain.ActivityError, event_id: uuid.UUID | None = None
    ) -> ItemResult:
        body = error_body(error.code, error.message, **error.details)["error"]
        return cls(index=index, status="rejected", event_id=event_id, error=body)

    @classmethod
    def invalid(cls, index: int, error: ValidationError) -> ItemResult:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        message = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in errors)
        body = error_body("validation_error", message, errors=errors)["error"]
        return cls(index=index, status="rejected", error=body)


class SupportEventBatchOut(ResponseModel):
    accepted: int = Field(description="items stored and published by this request")
    duplicates: int
    rejected: int
    results: list[ItemResult]
