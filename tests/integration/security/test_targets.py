"""Targets over HTTP with auth on: who may set them where, what is refused, what is published."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.settings import Settings
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE
from tests.integration.registry.observe import error_code, outbox_types, stream_envelopes
from tests.integration.security.conftest import Keys, make_key
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TARGET = {
    "due": "2022-11-30",
    "covered_pct": {"commune": 100, "village": 90},
    "members_trained_pct": 100,
    "outcomes": {"vneid_activations": 50000},
}
LEGACY = {"edition": "legacy"}


async def test_operators_and_admins_of_the_province_set_targets_publishers_may_not(
    registry_client: httpx.AsyncClient,
    registry_engine: AsyncEngine,
    auth_engine: AsyncEngine,
    keys: Keys,
    redis: Redis,
    secured: Settings,
) -> None:
    url = f"/v1/targets/{LEGACY_PROVINCE}"
    operator_20 = await make_key(auth_engine, "operator", "20")

    publisher = await registry_client.put(
        url, params=LEGACY, json=TARGET, headers=keys.publisher_15.headers
    )
    other_province = await registry_client.put(
        url, params=LEGACY, json=TARGET, headers=operator_20.headers
    )
    assert (publisher.status_code, error_code(publisher)) == (403, "role_not_allowed")
    # Outside its province a unit is as unknown to the key as one that does not exist.
    assert (other_province.status_code, error_code(other_province)) == (404, "unit_not_found")
    assert "target.set" not in await outbox_types(registry_engine)

    first = await registry_client.put(
        url, params=LEGACY, json=TARGET, headers=keys.operator_15.headers
    )
    assert first.status_code == 200, first.text
    assert first.json() == {
        "edition": "legacy",
        "code": LEGACY_PROVINCE,
        "level": "province",
        "version": 1,
        "due": "2022-11-30",
        # The province has districts below it too: covered_pct lists the levels given.
        "covered_pct": {"commune": 100.0, "village": 90.0},
        "members_trained_pct": 100.0,
        "outcomes": {"vneid_activations": 50000},
    }
    # The same target again: no new version, no event.
    again = await registry_client.put(url, params=LEGACY, json=TARGET, headers=keys.admin.headers)
    assert again.json()["version"] == 1
    changed = await registry_client.put(
        url, params=LEGACY, json={"due": "2023-06-30"}, headers=keys.admin.headers
    )
    assert changed.json()["version"] == 2
    assert changed.json()["covered_pct"] == {}  # a PUT replaces the whole target
    commune = await registry_client.put(
        f"/v1/targets/{LEGACY_COMMUNE}",
        params=LEGACY,
        json={"covered_pct": {"village": 100}},
        headers=keys.operator.headers,
    )
    assert commune.status_code == 200, commune.text
    assert (await outbox_types(registry_engine))["target.set"] == 3

    async def published() -> list[Any] | None:
        envelopes = await stream_envelopes(redis, secured)
        sent = [e for e in envelopes if e["type"] == "target.set"]
        return sent if len(sent) >= 3 else None

    sent = await wait_until(published, timeout=10)
    assert [(e["unit_path"], e["payload"]["version"]) for e in sent] == [
        ([LEGACY_PROVINCE], 1),
        ([LEGACY_PROVINCE], 2),
        ([LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE], 1),
    ]
    assert {e["actor"] for e in sent} == {
        keys.operator_15.key_id,
        keys.admin.key_id,
        keys.operator.key_id,
    }

    provinces = await registry_client.get(
        "/v1/targets", params=LEGACY, headers=keys.operator_15.headers
    )
    communes = await registry_client.get(
        "/v1/targets", params={**LEGACY, "parent": LEGACY_DISTRICT}, headers=keys.admin.headers
    )
    hidden = await registry_client.get("/v1/targets", params=LEGACY, headers=operator_20.headers)
    elsewhere = await registry_client.get(
        "/v1/targets", params={**LEGACY, "parent": LEGACY_DISTRICT}, headers=operator_20.headers
    )
    assert (elsewhere.status_code, error_code(elsewhere)) == (404, "unit_not_found")
    assert [(t["code"], t["version"]) for t in provinces.json()["items"]] == [(LEGACY_PROVINCE, 2)]
    assert [t["code"] for t in communes.json()["items"]] == [LEGACY_COMMUNE]
    assert hidden.json()["items"] == []


@pytest.mark.parametrize(
    ("code", "body", "status", "error"),
    [
        (LEGACY_COMMUNE, {"covered_pct": {"commune": 100}}, 422, "level_not_below_unit"),
        (LEGACY_PROVINCE, {"covered_pct": {"province": 100}}, 422, "level_not_below_unit"),
        (LEGACY_PROVINCE, {"covered_pct": {"commune": 101}}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"members_trained_pct": -1}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"outcomes": {"facebook_likes": 3}}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"outcomes": {"vneid_activations": -3}}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"outcomes": {"other_accounts": 10**22}}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"due": "2022-02-30"}, 422, "validation_error"),
        (LEGACY_PROVINCE, {"due": "2019-12-31"}, 422, "date_before_earliest"),
        (LEGACY_PROVINCE, {"deadline": "2022-11-30"}, 422, "validation_error"),
        ("99", {}, 404, "unit_not_found"),
    ],
)
async def test_a_target_that_breaks_a_rule_is_refused_and_says_which(
    registry_client: httpx.AsyncClient,
    registry_engine: AsyncEngine,
    keys: Keys,
    code: str,
    body: dict[str, object],
    status: int,
    error: str,
) -> None:
    response = await registry_client.put(
        f"/v1/targets/{code}", params=LEGACY, json=body, headers=keys.admin.headers
    )

    assert (response.status_code, error_code(response)) == (status, error), response.text
    assert "target.set" not in await outbox_types(registry_engine)
