"""The error every HTTP side answers with: `{"error": {"code": ..., "message": ..., ...}}`.

Apart from shared/web/app.py so that code below the HTTP layer (services.auth) can raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ApiError(Exception):
    """An error the caller can act on: status, a stable code, a message, and details."""

    # Response headers a subclass always sends (WWW-Authenticate on a 401).
    headers: ClassVar[Mapping[str, str] | None] = None

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class DomainError(Exception):
    """A change a service's rules refuse: a stable `code`, a message, and the records involved.

    Domain modules raise subclasses without knowing HTTP; each service maps them to
    statuses once, with `shared.web.app.install_domain_errors`.
    """

    code: ClassVar[str]

    def __init__(self, message: str, **details: Any) -> None:
        if {"code", "message"} & details.keys():
            raise TypeError("details may not be named code or message: the error body uses those")
        super().__init__(message)
        self.message = message
        self.details = details


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}
