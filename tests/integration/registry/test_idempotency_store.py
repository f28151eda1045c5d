"""shared.web.idempotency alone, against the registry's key table: the API others reuse."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.tables import idempotency_keys
from shared.web.idempotency import (
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    StoredResponse,
    request_fingerprint,
    run_once,
    stored_response,
)


class Answer(BaseModel):
    n: int
    text: str


async def keyed_write(
    engine: AsyncEngine, key: str | None, body: dict[str, object], calls: list[int]
) -> StoredResponse:
    async def write() -> tuple[int, BaseModel]:
        calls.append(1)
        return 201, Answer(n=len(calls), text="Xã Lang Thíp")

    async with engine.begin() as conn:
        return await run_once(
            conn,
            idempotency_keys,
            key=key,
            method="POST",
            path="/v1/things",
            fingerprint=request_fingerprint("POST", "/v1/things", body),
            write=write,
        )


async def test_a_key_runs_the_write_once_and_replays_the_exact_answer(engine: AsyncEngine) -> None:
    calls: list[int] = []
    first = await keyed_write(engine, "k1", {"a": 1}, calls)
    again = await keyed_write(engine, "k1", {"a": 1}, calls)
    assert calls == [1]
    assert first == StoredResponse(201, '{"n":1,"text":"Xã Lang Thíp"}')
    assert again == StoredResponse(201, first.body, replayed=True)
    response = stored_response(again)
    assert (response.status_code, response.body) == (201, first.body.encode())  # type: ignore[union-attr]
    assert response.headers["Idempotent-Replayed"] == "true"


async def test_without_a_key_every_request_runs(engine: AsyncEngine) -> None:
    calls: list[int] = []
    await keyed_write(engine, None, {"a": 1}, calls)
    await keyed_write(engine, None, {"a": 1}, calls)
    assert calls == [1, 1]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(idempotency_keys)) == 0


async def test_another_request_under_the_key_is_refused(engine: AsyncEngine) -> None:
    calls: list[int] = []
    await keyed_write(engine, "k2", {"a": 1}, calls)
    with pytest.raises(IdempotencyKeyReusedError) as refused:
        await keyed_write(engine, "k2", {"a": 2}, calls)
    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")
    assert calls == [1]


async def test_a_write_that_fails_leaves_no_key(engine: AsyncEngine) -> None:
    async def failing() -> tuple[int, BaseModel]:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await run_once(
                conn,
                idempotency_keys,
                key="k3",
                method="POST",
                path="/v1/things",
                fingerprint="f",
                write=failing,
            )
    calls: list[int] = []
    assert (await keyed_write(engine, "k3", {"a": 1}, calls)).replayed is False


async def test_a_claim_without_an_answer_is_reported_in_use(engine: AsyncEngine) -> None:
    fingerprint = request_fingerprint("POST", "/v1/things", {"a": 1})
    async with engine.begin() as conn:
        await conn.execute(
            insert(idempotency_keys).values(
                key="k4", fingerprint=fingerprint, method="POST", path="/v1/things"
            )
        )
    with pytest.raises(IdempotencyKeyInUseError):
        await keyed_write(engine, "k4", {"a": 1}, [])


def test_fingerprints_ignore_key_order_and_tell_paths_and_methods_apart() -> None:
    one = request_fingerprint("post", "/v1/x", {"a": 1, "b": [1, 2]}, edition="legacy")
    assert one == request_fingerprint("POST", "/v1/x", {"b": [1, 2], "a": 1}, edition="legacy")
    assert one != request_fingerprint("POST", "/v1/y", {"a": 1, "b": [1, 2]}, edition="legacy")
    assert one != request_fingerprint("PUT", "/v1/x", {"a": 1, "b": [1, 2]}, edition="legacy")
    assert one != request_fingerprint("POST", "/v1/x", {"a": 1, "b": [1, 2]}, edition="2025")
