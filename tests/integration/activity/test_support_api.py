"""Every rule of POST /v1/support-events and its batch form, through HTTP, on real servers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from shared.contracts.dates import today_in_vietnam
from shared.contracts.events import SupportRecorded, decode_entry
from shared.contracts.events.activity import CATEGORIES
from shared.contracts.streams import ACTIVITY_EVENTS, stream_key
from shared.runtime.settings import Settings
from tests.integration.activity.harness import (
    directory_consumer,
    directory_version,
    equals,
    outbox_count,
    publish,
    registered_team,
    stored_event_ids,
    support_body,
    team_event,
)
from tests.waiting import wait_until

SINGLE = "/v1/support-events"
BATCH = "/v1/support-events:batch"


async def published(redis: Redis, settings: Settings, count: int) -> list[SupportRecorded]:
    """The support events on activity.events.v1 once there are `count` of them."""
    key = stream_key(ACTIVITY_EVENTS, settings.stream_namespace)

    async def entries() -> list[Any]:
        found: Any = await redis.xrange(key)
        return found if len(found) >= count else []

    found = await wait_until(entries, message=f"{count} support events published")
    events = [decode_entry(fields) for _, fields in found]
    assert all(isinstance(e, SupportRecorded) for e in events)
    return events  # type: ignore[return-value]


async def test_an_event_is_recorded_and_published_with_its_teams_unit_path(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id, category="public_services", residents_helped=37)

    response = await client.post(SINGLE, json=body)

    assert response.status_code == 202, response.text
    assert response.json() == {
        "event_id": body["event_id"],
        "team_id": str(team.team_id),
        "unit_code": team.unit_code,
        "duplicate": False,
    }
    assert await stored_event_ids(app) == {uuid.UUID(body["event_id"])}
    (event,) = await published(redis, settings, 1)
    assert str(event.event_id) == body["event_id"]
    assert event.type == "support.recorded"
    assert event.edition == "legacy"
    assert event.unit_path == ("15", "136", "04378", team.unit_code)
    assert event.payload.residents_helped == 37
    assert event.payload.category == "public_services"


async def test_an_event_without_event_id_gets_one(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id)
    del body["event_id"]

    response = await client.post(SINGLE, json=body)

    assert response.status_code == 202
    assert await stored_event_ids(app) == {uuid.UUID(response.json()["event_id"])}


async def test_the_same_event_twice_is_stored_and_published_once_and_the_answer_says_so(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id)

    first = await client.post(SINGLE, json=body)
    second = await client.post(SINGLE, json=body)

    assert first.status_code == second.status_code == 202
    assert first.json()["duplicate"] is False
    assert second.json() == first.json() | {"duplicate": True}
    assert len(await stored_event_ids(app)) == 1
    assert await outbox_count(app) == 1
    await published(redis, settings, 1)
    assert await redis.xlen(stream_key(ACTIVITY_EVENTS, settings.stream_namespace)) == 1


async def test_an_event_id_reused_for_other_content_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id)
    await client.post(SINGLE, json=body)

    response = await client.post(SINGLE, json=body | {"residents_helped": 99})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_id_conflict"
    assert await outbox_count(app) == 1


async def test_an_unknown_team_is_404(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.post(SINGLE, json=support_body(uuid.uuid4()))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_team"
    assert await stored_event_ids(app) == set()


async def test_a_dissolved_team_is_409(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    dissolved = team.model_copy(update={"status": "dissolved", "version": 2})
    await publish(redis, settings, team_event(dissolved))
    await wait_until(lambda: equals(directory_version(app, team.team_id), 2))

    response = await client.post(SINGLE, json=support_body(team.team_id))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "team_dissolved"
    assert await stored_event_ids(app) == set()


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("residents_helped", 0, 422),
        ("residents_helped", 1, 202),
        ("residents_helped", 10_000, 202),
        ("residents_helped", 10_001, 422),
        ("residents_helped", -5, 422),
        ("residents_helped", "12", 422),
        ("residents_helped", True, 422),
        ("residents_helped", 2.5, 422),
        ("category", "gaming", 422),
        ("category", "VNEID", 422),
        ("occurred_on", "2020-12-31", 422),
        ("occurred_on", "2021-01-01", 202),
        ("occurred_on", "2024-02-30", 422),
        ("team_id", "not-a-uuid", 422),
    ],
)
async def test_field_rules(
    app: FastAPI,
    client: httpx.AsyncClient,
    redis: Redis,
    settings: Settings,
    field: str,
    value: Any,
    status: int,
) -> None:
    team = await registered_team(redis, settings, app)

    response = await client.post(SINGLE, json=support_body(team.team_id) | {field: value})

    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["error"]["code"] in ("validation_error", "invalid_support_event")
        assert field in response.text


async def test_every_category_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    for category in CATEGORIES:
        response = await client.post(SINGLE, json=support_body(team.team_id, category=category))
        assert response.status_code == 202, category
    assert len(await stored_event_ids(app)) == len(CATEGORIES) == 7


async def test_today_is_accepted_and_tomorrow_is_not(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    today = today_in_vietnam()

    on_today = await client.post(SINGLE, json=support_body(team.team_id, occurred_on=str(today)))
    tomorrow = str(today + timedelta(days=1))
    in_future = await client.post(SINGLE, json=support_body(team.team_id, occurred_on=tomorrow))

    assert on_today.status_code == 202
    assert in_future.status_code == 422
    assert in_future.json()["error"]["code"] == "invalid_support_event"
    assert "future" in in_future.json()["error"]["message"]


async def test_unknown_and_missing_fields_are_refused(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    extra = await client.post(SINGLE, json=support_body(team.team_id, volunteers=3))
    body = support_body(team.team_id)
    del body["category"]
    missing = await client.post(SINGLE, json=body)

    assert extra.status_code == missing.status_code == 422
    assert "volunteers" in extra.text
    assert "category" in missing.text
    assert await stored_event_ids(app) == set()


async def test_an_edition_that_is_not_the_teams_makes_it_unknown(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)

    other = await client.post(SINGLE, json=support_body(team.team_id, edition="2025"))
    same = await client.post(SINGLE, json=support_body(team.team_id), params={"edition": "legacy"})
    clash = await client.post(
        SINGLE, json=support_body(team.team_id, edition="legacy"), params={"edition": "2025"}
    )

    assert other.status_code == 404
    assert same.status_code == 202
    assert clash.status_code == 422
    assert clash.json()["error"]["code"] == "edition_mismatch"


async def test_a_retried_request_with_an_idempotency_key_gets_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id)
    del body["event_id"]  # without its own id, only the key tells a retry from a new event
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = await client.post(SINGLE, json=body, headers=headers)
    retry = await client.post(SINGLE, json=body, headers=headers)
    reused = await client.post(SINGLE, json=body | {"residents_helped": 1}, headers=headers)

    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await stored_event_ids(app)) == 1


async def test_a_mixed_batch_keeps_exactly_the_valid_new_events(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    gone = await registered_team(redis, settings, app)
    await publish(
        redis, settings, team_event(gone.model_copy(update={"status": "dissolved", "version": 2}))
    )
    await wait_until(lambda: equals(directory_version(app, gone.team_id), 2))
    earlier = support_body(team.team_id)
    assert (await client.post(SINGLE, json=earlier)).status_code == 202
    new_one, new_two = support_body(team.team_id), support_body(team.team_id, category="other")
    events: list[Any] = [
        new_one,  # 0 accepted
        support_body(team.team_id, residents_helped=0),  # 1 invalid
        earlier,  # 2 duplicate of an earlier request
        support_body(uuid.uuid4()),  # 3 unknown team
        new_two,  # 4 accepted
        new_one,  # 5 duplicate within the batch
        support_body(gone.team_id),  # 6 dissolved team
        "not an object",  # 7 invalid
        support_body(team.team_id, colour="red"),  # 8 unknown field
        support_body(team.team_id, occurred_on="2099-01-01"),  # 9 future
        {k: v for k, v in support_body(uuid.uuid4()).items() if k != "event_id"},  # 10 unknown
    ]

    response = await client.post(BATCH, json={"events": events})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 2, 7)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(11))
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    codes = {r["index"]: r["error"]["code"] for r in results if r["status"] == "rejected"}
    assert codes == {
        1: "validation_error",
        3: "unknown_team",
        6: "team_dissolved",
        7: "validation_error",
        8: "validation_error",
        9: "invalid_support_event",
        10: "unknown_team",
    }
    assert results[0]["event_id"] == new_one["event_id"]
    assert results[3]["event_id"] == events[3]["event_id"]  # the id it was sent with...
    assert results[10]["event_id"] is None  # ...and none made up for one sent without
    assert results[0]["unit_code"] == team.unit_code
    expected = {uuid.UUID(b["event_id"]) for b in (earlier, new_one, new_two)}
    assert await stored_event_ids(app) == expected
    stream = await published(redis, settings, 3)
    assert {e.event_id for e in stream} == expected
    assert await outbox_count(app) == 3


async def test_a_batch_over_1000_is_413_and_1000_is_fine(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    thousand = [support_body(team.team_id) for _ in range(1000)]

    too_many = await client.post(BATCH, json={"events": [*thousand, support_body(team.team_id)]})
    full = await client.post(BATCH, json={"events": thousand})

    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "batch_too_large"
    assert full.status_code == 200
    assert full.json()["accepted"] == 1000
    assert len(await stored_event_ids(app)) == 1000


async def test_an_empty_batch_or_a_body_without_events_is_refused(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(BATCH, json={"events": []})).status_code == 422
    assert (await client.post(BATCH, json={"items": []})).status_code == 422


async def test_a_retried_batch_with_an_idempotency_key_gets_the_first_answer(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    body = support_body(team.team_id)
    del body["event_id"]
    headers = {"Idempotency-Key": "batch-2024-05-20-lang-thip"}

    first = await client.post(BATCH, json={"events": [body, body]}, headers=headers)
    retry = await client.post(BATCH, json={"events": [body, body]}, headers=headers)

    assert first.json()["accepted"] == 2  # no event_id: two events, two ids
    assert retry.json() == first.json()
    assert len(await stored_event_ids(app)) == 2


async def test_health_readiness_and_docs(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": True,
        "redis": True,
        "relay": True,
        "team_directory_consumer": True,
    }
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {SINGLE, BATCH} <= set(paths)

    await directory_consumer(app).stop()
    stopped = await client.get("/readyz")
    assert stopped.status_code == 503
    assert stopped.json()["checks"]["team_directory_consumer"] is False


async def test_outcomes_are_stored_published_and_bounded_by_residents_times_three(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    with_outcomes = support_body(
        team.team_id,
        residents_helped=10,
        outcomes={"vneid_activations": 30, "payment_accounts": 4},
    )
    without = support_body(team.team_id)

    for body in (with_outcomes, without):
        response = await client.post(SINGLE, json=body)
        assert response.status_code == 202, response.text
    over = await client.post(
        SINGLE,
        json=support_body(team.team_id, residents_helped=10, outcomes={"other_accounts": 31}),
    )
    assert over.status_code == 422
    assert over.json()["error"]["code"] == "invalid_support_event"
    assert "outcomes.other_accounts" in over.json()["error"]["message"]
    for bad in ({"vneid_activations": -1}, {"vneid_activations": "3"}, {"qr_codes": 1}):
        refused = await client.post(SINGLE, json=support_body(team.team_id, outcomes=bad))
        assert refused.status_code == 422, bad
    # Same event_id, other outcomes: another event, not a retry.
    clash = await client.post(SINGLE, json=with_outcomes | {"outcomes": {"vneid_activations": 1}})
    assert clash.status_code == 409
    assert (await client.post(SINGLE, json=with_outcomes)).json()["duplicate"] is True

    events = {str(e.event_id): e for e in await published(redis, settings, 2)}
    sent = events[with_outcomes["event_id"]]
    assert sent.schema_version == 2
    assert sent.payload.outcomes.counts() == (30, 0, 4, 0, 0)
    assert events[without["event_id"]].payload.outcomes.counts() == (0, 0, 0, 0, 0)


async def test_a_batch_checks_outcomes_item_by_item(
    app: FastAPI, client: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    team = await registered_team(redis, settings, app)
    good = support_body(team.team_id, residents_helped=2, outcomes={"ecommerce_accounts": 6})
    events = [
        good,
        support_body(team.team_id, residents_helped=2, outcomes={"ecommerce_accounts": 7}),
        support_body(team.team_id, outcomes={"vneid_activations": -2}),
    ]

    response = await client.post(BATCH, json={"events": events})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["error"]["code"] == "invalid_support_event"
    assert results[2]["error"]["code"] == "validation_error"
    (event,) = await published(redis, settings, 1)
    assert event.payload.outcomes.ecommerce_accounts == 6
