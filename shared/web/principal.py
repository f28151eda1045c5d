"""Who a request comes from (a verified API key) and what it may write and read.

Publishers write only inside their province's subtree; operators read figures (of one
province when their key names one); admins do anything. Every refusal is a 403 whose
message names the reason, so the caller knows which key to use instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.contracts.units import Edition
from shared.web.errors import ApiError
from shared.web.keys import Role

ANONYMOUS_ACTOR = "anonymous"


class AuthenticationError(ApiError):
    """401: no key, or not a key this system knows (or still honours)."""

    headers: ClassVar[Mapping[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="cdtt"'}

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(401, code, message, **details)


class ForbiddenError(ApiError):
    """403: a valid key asking for something its role or province does not allow."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(403, code, message, **details)


@dataclass(frozen=True)
class Principal:
    """A verified key: its id (never its secret), role, and optional province."""

    key_id: str
    role: Role
    edition: Edition | None = None
    province_code: str | None = None
    anonymous: bool = False

    @property
    def actor(self) -> str:
        """What events record as having caused them."""
        return ANONYMOUS_ACTOR if self.anonymous else self.key_id

    @property
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Keys a request uses: its province's ("" for keys bound to none),
        so one province cannot take a key another will send."""
        return "" if self.province_code is None else f"{self.edition}:{self.province_code}"

    @property
    def scope_text(self) -> str:
        if self.province_code is None:
            return "every province"
        return f"province {self.province_code} (edition {self.edition})"

    def covers(self, edition: Edition, unit_path: Sequence[str]) -> bool:
        """Whether a unit (by its path, province first) is inside this key's province."""
        if self.province_code is None:
            return True
        return edition == self.edition and tuple(unit_path[:1]) == (self.province_code,)

    def require_role(self, *roles: Role, doing: str) -> None:
        if self.role not in roles:
            raise ForbiddenError(
                "role_not_allowed",
                f"{self.role} keys may not {doing}; this needs a key with role "
                f"{' or '.join(roles)}",
                key_id=self.key_id,
                role=self.role,
            )

    @property
    def sees_phones(self) -> bool:
        """Members' phones are for the province's publishers and admins; operators see names
        and roles only."""
        return self.role in ("publisher", "admin")

    def require_write(
        self, edition: Edition, unit_path: Sequence[str], *, unknown: Exception | None = None
    ) -> None:
        """Writing at a unit: a publisher inside its province, or an admin. Outside the
        province: `unknown` (what an id that exists nowhere gets) when given, else 403."""
        self.require_role("publisher", "admin", doing="write")
        self._require_covers(edition, unit_path, "write", unknown)

    def require_read(
        self, edition: Edition, unit_path: Sequence[str], *, unknown: Exception | None = None
    ) -> None:
        """Reading a unit's details: any key whose province (if any) contains the unit.
        Outside the province: `unknown` when given (a probed id learns nothing), else 403."""
        self._require_covers(edition, unit_path, "read", unknown)

    def require_everywhere(self, edition: Edition, what: str) -> None:
        """National views: only keys bound to no province."""
        if self.province_code is not None:
            raise ForbiddenError(
                "outside_scope",
                f"key {self.key_id} may read only {self.scope_text}, not {what}; "
                f"ask for /v1/coverage/{self.province_code}?edition={self.edition} instead",
                key_id=self.key_id,
                edition=self.edition,
                province=self.province_code,
                requested_edition=edition,
            )

    def _require_covers(
        self, edition: Edition, unit_path: Sequence[str], verb: str, unknown: Exception | None
    ) -> None:
        if self.covers(edition, unit_path):
            return
        if unknown is not None:
            raise unknown
        where = unit_path[-1] if unit_path else "?"
        raise ForbiddenError(
            "outside_scope",
            f"key {self.key_id} may {verb} only in {self.scope_text}; unit {where} "
            f"(edition {edition}) is in province {unit_path[0] if unit_path else '?'}",
            key_id=self.key_id,
            edition=self.edition,
            province=self.province_code,
            unit_edition=edition,
            unit_path=list(unit_path),
        )


ANONYMOUS_ADMIN = Principal(key_id=ANONYMOUS_ACTOR, role="admin", anonymous=True)
