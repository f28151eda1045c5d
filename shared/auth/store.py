"""The keys in the `auth` schema: create (hash only), list, revoke, and look up by id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth.keys import ROLES, NewKey, Role, generate_key
from shared.auth.principal import Principal
from shared.auth.tables import api_keys
from shared.settings import EDITIONS, Edition

_PROVINCE_CODE = re.compile(r"^[0-9]{2}$")
MAX_NAME_LENGTH = 200


class KeyRuleError(ValueError):
    """A key that may not exist (a publisher without a province, an admin with one, ...)."""


@dataclass(frozen=True)
class StoredKey:
    """One row of auth.api_keys; `secret_hash` is all that remains of the secret."""

    key_id: str
    secret_hash: str
    role: Role
    edition: Edition | None
    province_code: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None

    def principal(self) -> Principal:
        return Principal(
            key_id=self.key_id,
            role=self.role,
            edition=self.edition,
            province_code=self.province_code,
        )


def check_key_rules(
    role: str, province_code: str | None, edition: str | None, name: str
) -> tuple[Role, Edition | None]:
    """The role and edition of an acceptable key; raises KeyRuleError naming the rule."""
    chosen = next((known for known in ROLES if known == role), None)
    if chosen is None:
        raise KeyRuleError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if chosen == "publisher" and province_code is None:
        raise KeyRuleError("a publisher key is bound to a province: give --province CODE")
    if chosen == "admin" and province_code is not None:
        raise KeyRuleError("an admin key is not bound to a province: leave --province out")
    if province_code is not None and not _PROVINCE_CODE.match(province_code):
        raise KeyRuleError(f"a province code is two digits (e.g. 15), not {province_code!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise KeyRuleError(f"a key's name is at most {MAX_NAME_LENGTH} characters")
    if province_code is None:
        return chosen, None
    for known_edition in EDITIONS:
        if edition == known_edition:
            return chosen, known_edition
    raise KeyRuleError(f"edition must be one of {', '.join(EDITIONS)}, not {edition!r}")


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
