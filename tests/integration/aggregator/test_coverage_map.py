"""GET /v1/coverage/map on a real aggregator fed from the streams: points, gzip, ETag and 304."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.contracts.events import TeamCreated
from shared.runtime.settings import Settings
from tests.e2e.stack import ServiceProcess
from tests.integration.aggregator.test_consumer import publish
from tests.unit.aggregator.fakes import team_event, unit_registered
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

YEN_BAI = unit_registered(("15",), "province", name="Tỉnh Yên Bái", centre=(21.7, 104.9))
VAN_YEN = unit_registered(("15", "136"), "district", name="Huyện Văn Yên")
MAU_A = unit_registered(
    ("15", "136", "04375"), "commune", name="Xã Mậu A", centre=(21.8958, 104.701)
)
LANG_THIP = unit_registered(
    ("15", "136", "04378"), "commune", name="Xã Lang Thíp", centre=(22.0, 104.6)
)
# A commune the data file has no centre for: registered, counted, never a dot.
NO_CENTRE = unit_registered(("15", "136", "04381"), "commune", name="Xã Không Toạ Độ")
LAO_CAI = unit_registered(("10",), "province", name="Tỉnh Lào Cai")
# Enough communes for a body worth compressing (bodies under 1 KB go as they are).
LAO_CAI_COMMUNES = [
    unit_registered(
        ("10", "080", f"{2650 + n:05d}"), "commune", name=f"Xã Bản {n}", centre=(22.6, 103.9)
    )
    for n in range(30)
]


def points(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row[0]: dict(zip(body["fields"], row, strict=True)) for row in body["points"]}


async def test_the_map_serves_communes_with_centres_compressed_and_revalidated(
    aggregator: ServiceProcess, settings: Settings, redis: Redis
) -> None:
    units = [YEN_BAI, VAN_YEN, MAU_A, LANG_THIP, NO_CENTRE, LAO_CAI, *LAO_CAI_COMMUNES]
    await publish(redis, settings, units)
    async with httpx.AsyncClient(base_url=aggregator.url, timeout=10) as client:

        async def national() -> httpx.Response:
            return await client.get("/v1/coverage/map")

        async def all_shown() -> bool:
            response = await national()
            return response.status_code == 200 and len(response.json()["points"]) == 32

        await wait_until(all_shown, timeout=30, interval=0.1, message="communes on the map")
        first = await national()
        assert first.headers["content-type"] == "application/json"
        assert first.headers["cache-control"] == "private, no-cache"
        shown = points(first.json())
        assert shown["04375"] == {
            "code": "04375",
            "name": "Xã Mậu A",
            "lat": 21.8958,
            "lon": 104.701,
            "province": "15",
            "covered": 0,
            "teams": 0,
            "members": 0,
        }
        assert set(shown) == {"04375", "04378", *(u.payload.code for u in LAO_CAI_COMMUNES)}
        assert first.headers["content-encoding"] == "gzip"  # httpx asks for it and decodes it

        etag = first.headers["etag"]
        again = await client.get("/v1/coverage/map", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""

        # A team on Mậu A: covered, its figures, and a new ETag that no longer matches.
        team = team_event(
            TeamCreated, uuid.uuid4(), MAU_A.unit_path, "commune", version=1, member_count=6
        )
        await publish(redis, settings, [team])

        async def covered() -> bool:
            body = (await national()).json()
            return points(body)["04375"]["covered"] == 1

        await wait_until(covered, timeout=30, interval=0.1, message="Mậu A covered on the map")
        after = await client.get("/v1/coverage/map", headers={"If-None-Match": etag})
        assert after.status_code == 200
        assert after.headers["etag"] != etag
        mau_a = points(after.json())["04375"]
        assert (mau_a["covered"], mau_a["teams"], mau_a["members"]) == (1, 1, 6)

        # A province, a legacy district: only their communes; an unknown parent is a 404.
        province = await client.get("/v1/coverage/map", params={"parent": "15"})
        district = await client.get("/v1/coverage/map", params={"parent": "136"})
        assert set(points(province.json())) == set(points(district.json())) == {"04375", "04378"}
        unknown = await client.get("/v1/coverage/map", params={"parent": "99"})
        assert unknown.status_code == 404
        assert (await client.get("/v1/coverage/map", params={"edition": "2025"})).json()[
            "points"
        ] == []
        # Asked for no compression, the same body and ETag come plain.
        plain = await client.get("/v1/coverage/map", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.headers["etag"] == after.headers["etag"]
        assert plain.json() == after.json()
