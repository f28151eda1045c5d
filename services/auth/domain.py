"""The rules of API keys: which keys may exist, and what a stored key grants (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from shared.contracts.units import EDITIONS, Edition
from shared.web.keys import ROLES, Role
from shared.web.principal import Principal

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
