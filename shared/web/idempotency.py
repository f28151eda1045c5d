"""Idempotent writes: a retried request with the same Idempotency-Key gets the first answer.

A producer's route calls `write_once`, which opens the service's unit of work (one
transaction) and runs `run_once` in it: the key is claimed in that transaction, the write
(change + outbox rows) runs, and the response is stored beside them. The change, its
events and the stored answer therefore commit together or not at all:

    async def write(uow: UnitOfWork) -> tuple[int, BaseModel]:
        return 201, ThingOut.of(await create_thing(uow, body))

    return await write_once(
        unit_of_work(sessionmaker), idempotency_keys, request, key, body, write
    )

- A retry with the same key and the same request returns the stored status and body,
  byte for byte, marked `Idempotent-Replayed: true`; nothing runs again.
- The same key with another request (other body, path or method) is refused: 422
  `idempotency_key_reused`.
- Two requests with one key at the same moment: the second waits on the first's claim
  (a unique index) and then replays its answer; it never writes twice.
- Only successful answers are stored. A refused write rolled back and left nothing
  behind, so a retry is decided afresh against the current state.
- Keys are kept for a retention window; `purge_idempotency_keys` forgets older ones.
Needs READ COMMITTED (PostgreSQL's default), so the waiting request sees the first's row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import orjson
from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    column,
    delete,
    func,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.schema import SchemaItem

from shared.web.app import ApiError

if TYPE_CHECKING:
    from shared.runtime.migrations import SchemaOperations

REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_PK = "pk_idempotency_keys"
IDEMPOTENCY_KEY = ("scope", "key")
DEFAULT_RETENTION = timedelta(hours=24)

# The header as a FastAPI parameter: `key: IdempotencyKey` in a route signature.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID is fine); a retry with it returns the first answer.",
    ),
]


def _idempotency_layout(*, scoped: bool = True) -> tuple[SchemaItem, ...]:
    """Columns, key and index of the key store: one definition for the table and its
    migrations. `scoped=False` is the first layout (keys global to the service), which
    the producers' first migrations created and `scope_idempotency_keys` turns into this."""
    return (
        # The caller's province ("<edition>:<code>"), "" for keys bound to none: a key is
        # one province's own, so another province cannot take it first (#18 item 6).
        *((Column("scope", Text, nullable=False, server_default=""),) if scoped else ()),
        Column("key", Text, nullable=False),
        Column("fingerprint", Text, nullable=False),
        Column("method", Text, nullable=False),
        Column("path", Text, nullable=False),
        # NULL only inside the claiming transaction, which stores the answer before it commits.
        Column("status", SmallInteger, nullable=True),
        # The JSON text exactly as first sent (NULL for a response without a body, e.g. 204).
        Column("body", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # Named here, not by the metadata's naming convention, so a migration makes the same.
        PrimaryKeyConstraint(*IDEMPOTENCY_KEY if scoped else ("key",), name=IDEMPOTENCY_PK),
        # What the purge of expired keys reads.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )


def idempotency_table(metadata: MetaData) -> Table:
    """The store of keys and first answers, in the owning service's schema."""
    return Table("idempotency_keys", metadata, *_idempotency_layout())


def create_idempotency_keys(op: SchemaOperations, schema: str) -> None:
    """In a producer's first migrations: create the key store as it first was (keys global
    to the service); `scope_idempotency_keys` brings it to today's layout.

    Migrations that ran keep what this created then: a later change to the store takes a
    new migration in each producer, never an edit of the layout above alone.
    """
    op.create_table("idempotency_keys", *_idempotency_layout(scoped=False), schema=schema)


def scope_idempotency_keys(op: SchemaOperations, schema: str) -> None:
    """In a migration: key the store by (scope, key) instead of key alone."""
    op.add_column(
        "idempotency_keys",
        Column("scope", Text, nullable=False, server_default=""),
        schema=schema,
    )
    op.drop_constraint(IDEMPOTENCY_PK, "idempotency_keys", schema=schema, type_="primary")
    op.create_primary_key(IDEMPOTENCY_PK, "idempotency_keys", list(IDEMPOTENCY_KEY), schema=schema)


def unscope_idempotency_keys(op: SchemaOperations, schema: str) -> None:
    """Undo `scope_idempotency_keys`; keys held by a province are forgotten (a retry with
    one is then decided afresh), as two provinces may hold the same key."""
    op.drop_constraint(IDEMPOTENCY_PK, "idempotency_keys", schema=schema, type_="primary")
    stored = table("idempotency_keys", column("scope"), schema=schema)
    op.execute(delete(stored).where(stored.c.scope != ""))
    op.create_primary_key(IDEMPOTENCY_PK, "idempotency_keys", ["key"], schema=schema)
    op.drop_column("idempotency_keys", "scope", schema=schema)


class IdempotencyKeyReusedError(ApiError):
    def __init__(self, key: str) -> None:
        super().__init__(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {key!r} was first used for another request; use a new key",
            idempotency_key=key,
        )


class IdempotencyKeyInUseError(ApiError):
    def __init__(self, key: str) -> None:
        super().__init__(
            409,
            "idempotency_key_in_use",
            f"a request with Idempotency-Key {key!r} has not finished; retry shortly",
            idempotency_key=key,
        )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str | None
    replayed: bool = False


def request_fingerprint(
    method: str, path: str, body: BaseModel | Mapping[str, Any] | None, **params: Any
) -> str:
    """A digest of what makes two requests the same: method, path, parsed body, parameters.

    The body is taken after parsing, so key order and whitespace do not matter.
    """
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    canonical = orjson.dumps(
        {"method": method.upper(), "path": path, "params": params, "body": content},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()


def _render(body: BaseModel | None) -> str | None:
    return None if body is None else body.model_dump_json()


async def run_once(
    session: AsyncSession | AsyncConnection,
    table: Table,
    *,
    key: str | None,
    method: str,
    path: str,
    fingerprint: str,
    write: Callable[[], Awaitable[tuple[int, BaseModel | None]]],
    scope: str = "",
) -> StoredResponse:
    """Run `write` once per (scope, key) inside the caller's transaction; replay its answer
    after that.

    Without a key the write simply runs. `write` returns (status, body model or None).
    """
    if key is None:
        status, body = await write()
        return StoredResponse(status, _render(body))

    claimed = await session.execute(
        insert(table)
        .values(scope=scope, key=key, fingerprint=fingerprint, method=method.upper(), path=path)
        .on_conflict_do_nothing(index_elements=[table.c.scope, table.c.key])
        .returning(table.c.key)
    )
    if claimed.first() is None:
        # Someone holds the key: this insert waited for their commit, so the row is readable.
        first = (
            await session.execute(
                select(table.c.fingerprint, table.c.status, table.c.body).where(
                    table.c.scope == scope, table.c.key == key
                )
            )
        ).one()
        if first.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(key)
        if first.status is None:
            raise IdempotencyKeyInUseError(key)
        return StoredResponse(first.status, first.body, replayed=True)

    status, body = await write()
    stored = StoredResponse(status, _render(body))
    await session.execute(
        update(table)
        .where(table.c.scope == scope, table.c.key == key)
        .values(status=stored.status, body=stored.body)
    )
    return stored


class Transaction(Protocol):
    """A service's unit of work as `write_once` needs it: the session of its transaction."""

    @property
    def session(self) -> AsyncSession: ...


async def write_once[UnitOfWorkT: Transaction](
    unit_of_work: AbstractAsyncContextManager[UnitOfWorkT],
    table: Table,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    write: Callable[[UnitOfWorkT], Awaitable[tuple[int, BaseModel | None]]],
    *,
    scope: str,
    **params: Any,
) -> Response:
    """A route's write and its answer under the key, in one unit of work (one transaction).

    The unit of work commits when `write` returns and rolls back when it raises, so a
    refused write leaves neither its change nor a stored answer behind. `scope` (the
    caller's province, `Principal.idempotency_scope`) owns the key; `params` (the edition,
    the key's actor, ...) join the request's fingerprint.
    """
    path = request.url.path
    fingerprint = request_fingerprint(request.method, path, body, **params)
    async with unit_of_work as uow:
        stored = await run_once(
            uow.session,
            table,
            key=key,
            method=request.method,
            path=path,
            fingerprint=fingerprint,
            write=lambda: write(uow),
            scope=scope,
        )
    return stored_response(stored)


def stored_response(stored: StoredResponse) -> Response:
    """The HTTP response for a stored answer, marking replays."""
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else None
    if stored.body is None:
        return Response(status_code=stored.status, headers=headers)
    return Response(
        stored.body, status_code=stored.status, media_type="application/json", headers=headers
    )


async def purge_idempotency_keys(
    engine: AsyncEngine, table: Table, older_than: timedelta = DEFAULT_RETENTION
) -> int:
    """Forget keys first used longer ago than the retention window."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(table).where(table.c.created_at < func.now() - older_than)
        )
    purged: int = result.rowcount
    return purged
