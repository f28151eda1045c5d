"""Item 3's baseline: the least a FastAPI endpoint can do to accept a support event (one INSERT).

Served by uvicorn exactly as `cdtt serve` serves the services (uvloop, httptools, one
process, no access log); the body is validated by pydantic and stored with one asyncpg
INSERT into a table shaped like activity.support_events. No team lookup, no outbox, no
idempotency record: the raw ceiling of "HTTP in, one row out" on this machine.

    BENCH_MINIMAL_DSN=postgresql://... uvicorn bench.minimal_app:create_app --factory
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from pydantic import BaseModel

TABLE = "activity.support_events_minimal"
CREATE_TABLE = f"CREATE TABLE IF NOT EXISTS {TABLE} (LIKE activity.support_events INCLUDING ALL)"
_INSERT = (
    f"INSERT INTO {TABLE} (event_id, team_id, edition, unit_code, unit_path, occurred_on, "
    "category, residents_helped) VALUES ($1, $2, '2025', '01', '{01}', $3, $4, $5)"
)


class SupportIn(BaseModel):
    event_id: uuid.UUID | None = None
    team_id: uuid.UUID
    occurred_on: date
    category: str
    residents_helped: int


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(os.environ["BENCH_MINIMAL_DSN"], min_size=10, max_size=10)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/support-events", status_code=202)
    async def record(body: SupportIn, request: Request) -> dict[str, Any]:
        event_id = body.event_id or uuid.uuid4()
        pool: asyncpg.Pool = request.app.state.pool
        await pool.execute(
            _INSERT, event_id, body.team_id, body.occurred_on, body.category, body.residents_helped
        )
        return {"event_id": event_id, "team_id": body.team_id}

    return app
