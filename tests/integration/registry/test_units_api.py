"""Units over HTTP: official units read back, villages registered under communes, every refusal."""

from __future__ import annotations

import unicodedata

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.cli import LoadReport
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, village_body
from tests.integration.registry.observe import created, error_code, outbox_types


async def test_an_official_unit_reads_back_whole(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/units/{LEGACY_DISTRICT}", params={"edition": "legacy"})
    assert response.status_code == 200
    assert response.json() == {
        "edition": "legacy",
        "code": "136",
        "name": "Huyện Văn Yên",
        "level": "district",
        "kind": "huyện",
        "parent_code": "15",
        "path": ["15", "136"],
    }


async def test_unknown_unit_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/units/99999", params={"edition": "legacy"})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "unit_not_found",
        "message": "no unit 99999 in edition legacy",
        "edition": "legacy",
        "unit_code": "99999",
    }


async def test_editions_live_side_by_side_and_the_default_is_cdtt_edition(
    client: httpx.AsyncClient, lao_cai_2025: LoadReport
) -> None:
    # Code 15 is Yên Bái in the legacy edition and Lào Cai in 2025; CDTT_EDITION defaults to 2025.
    default = await client.get("/v1/units/15")
    legacy = await client.get("/v1/units/15", params={"edition": "legacy"})
    assert (default.json()["name"], default.json()["edition"]) == ("Tỉnh Lào Cai", "2025")
    assert (legacy.json()["name"], legacy.json()["edition"]) == ("Tỉnh Yên Bái", "legacy")


async def test_children_of_a_unit(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/units", params={"parent": LEGACY_DISTRICT, "edition": "legacy"}
    )
    items = response.json()["items"]
    # The seed figure: Văn Yên has 25 communes.
    assert len(items) == 25
    assert {(u["level"], u["parent_code"]) for u in items} == {("commune", LEGACY_DISTRICT)}
    assert [u["code"] for u in items] == sorted(u["code"] for u in items)

    districts = await client.get("/v1/units", params={"parent": "15", "edition": "legacy"})
    assert len(districts.json()["items"]) == 9


async def test_the_provinces_of_an_edition(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/units", params={"level": "province", "edition": "legacy"})
    assert [u["code"] for u in response.json()["items"]] == [LEGACY_PROVINCE]


@pytest.mark.parametrize("params", [{}, {"level": "commune"}])
async def test_listing_needs_a_parent_or_the_top(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v1/units", params={"edition": "legacy", **params})
    assert response.status_code == 422
    assert error_code(response) == "wrong_level"


async def test_children_of_an_unknown_unit_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/units", params={"parent": "nope", "edition": "legacy"})
    assert response.status_code == 404


async def test_villages_are_numbered_under_their_commune(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = created(await client.post("/v1/units", json=village_body(name="Thôn Khe Dứa")))
    assert first == {
        "edition": "legacy",
        "code": f"{LEGACY_COMMUNE}-001",
        "name": "Thôn Khe Dứa",
        "level": "village",
        "kind": "thôn",
        "parent_code": LEGACY_COMMUNE,
        "path": [LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE, f"{LEGACY_COMMUNE}-001"],
    }
    given = created(await client.post("/v1/units", json=village_body(code=f"{LEGACY_COMMUNE}-010")))
    after = created(await client.post("/v1/units", json=village_body(kind="bản")))
    assert given["code"] == f"{LEGACY_COMMUNE}-010"
    assert (after["code"], after["kind"]) == (f"{LEGACY_COMMUNE}-011", "bản")

    read = await client.get(f"/v1/units/{LEGACY_COMMUNE}-001", params={"edition": "legacy"})
    assert read.json() == first
    children = await client.get("/v1/units", params={"parent": LEGACY_COMMUNE, "edition": "legacy"})
    assert len(children.json()["items"]) == 3
    assert (await outbox_types(engine))["unit.registered"] == 178 + 3


async def test_a_village_in_the_2025_edition(
    client: httpx.AsyncClient, lao_cai_2025: LoadReport
) -> None:
    communes = await client.get("/v1/units", params={"parent": "15"})
    commune = communes.json()["items"][0]["code"]
    village = created(
        await client.post("/v1/units", json={"parent_code": commune, "name": "Bản Mế"})
    )
    assert (village["edition"], village["path"]) == ("2025", ["15", commune, f"{commune}-001"])


async def test_a_taken_village_code_is_409(client: httpx.AsyncClient) -> None:
    code = f"{LEGACY_COMMUNE}-005"
    created(await client.post("/v1/units", json=village_body(code=code)))
    again = await client.post("/v1/units", json=village_body(code=code))
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "unit_code_taken",
        "message": f"unit code {code} is already registered",
        "unit_code": code,
    }


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"parent_code": "99999"}, 422, "unknown_unit"),
        ({"parent_code": LEGACY_DISTRICT}, 422, "wrong_level"),
        ({"parent_code": LEGACY_PROVINCE}, 422, "wrong_level"),
        ({"code": "04270-001"}, 422, "invalid_unit_code"),
        ({"code": f"{LEGACY_COMMUNE}-1"}, 422, "invalid_unit_code"),
        ({"edition": "2025"}, 422, "unknown_unit"),
    ],
)
async def test_refused_villages(
    client: httpx.AsyncClient, overrides: dict[str, str], status: int, code: str
) -> None:
    response = await client.post("/v1/units", json=village_body(**overrides))
    assert response.status_code == status, response.text
    assert error_code(response) == code
    assert response.json()["error"]["message"]


async def test_a_village_under_a_village_is_refused(client: httpx.AsyncClient) -> None:
    village = created(await client.post("/v1/units", json=village_body()))
    response = await client.post("/v1/units", json=village_body(parent_code=village["code"]))
    assert response.status_code == 422
    assert error_code(response) == "wrong_level"


async def test_vietnamese_names_round_trip_exactly_in_nfc(client: httpx.AsyncClient) -> None:
    name = "Tổ dân phố Nghĩa Tân – Đồi Chè (Ngòi Hóp) ễữỹ"
    typed_nfd = unicodedata.normalize("NFD", name)
    body = created(await client.post("/v1/units", json=village_body(name=typed_nfd)))
    assert body["name"] == name
    read = await client.get(f"/v1/units/{body['code']}", params={"edition": "legacy"})
    assert read.json()["name"] == name
    # The raw bytes are UTF-8 of the NFC form, not escapes.
    assert name.encode() in read.content


async def test_names_of_200_characters_but_no_more(client: httpx.AsyncClient) -> None:
    longest = "Ệ" * 200
    ok = await client.post(
        "/v1/units", json=village_body(name=unicodedata.normalize("NFD", longest))
    )
    assert created(ok)["name"] == longest
    too_long = await client.post("/v1/units", json=village_body(name="Ệ" * 201))
    assert too_long.status_code == 422
    assert "201 characters" in too_long.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        village_body(name="   "),
        village_body(name="Thôn\x07"),
        village_body(name=123),
        village_body(parent_code=["04378"]),
        village_body(kind="k" * 51),
        village_body(edition="2019"),
        village_body(colour="green"),
        {"name": "Thôn A"},
        {},
    ],
    ids=[
        "blank",
        "control",
        "number",
        "list",
        "long-kind",
        "edition",
        "unknown-field",
        "no-parent",
        "empty",
    ],
)
async def test_invalid_bodies_are_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/v1/units", json=body)
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"


async def test_unknown_fields_are_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/units", json=village_body(colour="green"))
    assert "colour" in response.json()["error"]["message"]


async def test_malformed_json_is_422(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post(
        "/v1/units",
        content=b'{"parent_code": "04378", "name": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert error_code(response) == "validation_error"
    assert (await outbox_types(engine))["unit.registered"] == 178


async def test_query_and_body_editions_must_agree(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/units", params={"edition": "2025"}, json=village_body(edition="legacy")
    )
    assert response.status_code == 422
    assert error_code(response) == "edition_mismatch"
