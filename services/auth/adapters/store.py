"""The keys in the `auth` schema: create (hash only), list, revoke, and look up by id."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.tables import api_keys
from services.auth.domain import StoredKey, check_key_rules
from shared.web.keys import NewKey, generate_key


def _stored(row: Row[tuple[object, ...]]) -> StoredKey:
    values = row._mapping
    return StoredKey(
        key_id=values["key_id"],
        secret_hash=values["secret_hash"],
        role=values["role"],
        edition=values["edition"],
        province_code=values["province_code"],
        name=values["name"],
        created_at=values["created_at"],
        revoked_at=values["revoked_at"],
    )


async def create_key(
    engine: AsyncEngine,
    *,
    role: str,
    province_code: str | None = None,
    edition: str | None = None,
    name: str = "",
) -> tuple[StoredKey, NewKey]:
    """Store a new key's hash; the returned NewKey's text is the only copy of the key."""
    chosen_role, chosen_edition = check_key_rules(role, province_code, edition, name)
    new = generate_key()
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                api_keys.insert()
                .values(
                    key_id=new.key_id,
                    secret_hash=new.secret_hash,
                    role=chosen_role,
                    edition=chosen_edition,
                    province_code=province_code,
                    name=name,
                )
                .returning(*api_keys.c)
            )
        ).one()
    return _stored(row), new


async def list_keys(engine: AsyncEngine) -> list[StoredKey]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(api_keys).order_by(api_keys.c.created_at))
    return [_stored(row) for row in rows]


async def find_key(engine: AsyncEngine, key_id: str) -> StoredKey | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
    return None if row is None else _stored(row)


async def revoke_key(engine: AsyncEngine, key_id: str) -> StoredKey | None:
    """Mark a key revoked now (kept, for the audit trail); None if no such key.

    Revoking twice keeps the first time.
    """
    async with engine.begin() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        row = (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
    return None if row is None else _stored(row)
