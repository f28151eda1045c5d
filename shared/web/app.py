"""What every service's HTTP side shares: errors, request ids, health, readiness, metrics, auth.

Errors are JSON that names the problem: `{"error": {"code": ..., "message": ...}}`, with
422 for validation errors and 503 (with Retry-After) while a dependency is away.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis, RedisCluster
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.messaging.asyncapi import asyncapi_yaml
from shared.runtime.logging import request_id
from shared.runtime.metrics import REGISTRY, http_request_seconds
from shared.runtime.settings import Settings
from shared.web.auth import Authenticator, AuthenticatorScope, check_auth_allowed
from shared.web.errors import ApiError as ApiError
from shared.web.errors import DomainError
from shared.web.errors import error_body as error_body
from shared.web.limits import UNLIMITED_PATHS, LimitsMiddleware

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[Request], Awaitable[Mapping[str, bool]]]


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def redis_reachable(redis: Redis | RedisCluster) -> bool:
    """For readiness probes: Redis (on a cluster: every node) answers a PING."""
    try:
        return bool(await redis.ping())
    except Exception:
        return False


def install_domain_errors(app: FastAPI, statuses: Mapping[type[DomainError], int]) -> None:
    """Answer a service's rule violations as JSON errors, by type (422 when not listed)."""

    @app.exception_handler(DomainError)
    async def on_domain_error(_: Request, error: DomainError) -> JSONResponse:
        body = error_body(error.code, error.message, **error.details)
        return JSONResponse(jsonable_encoder(body), statuses.get(type(error), 422))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = jsonable_encoder(error_body(exc.code, exc.message, **exc.details))
        return JSONResponse(body, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in exc.errors()
        ]
        return JSONResponse(
            jsonable_encoder(
                error_body("validation_error", _validation_message(errors), errors=errors)
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "body_too_large",
        }.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route of the path; a client needs them all.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def on_dependency_down(_: Request, exc: Exception) -> JSONResponse:
        if _sqlstate(exc).startswith("22"):
            # A data exception (a NUL byte in text, ...): the value is at fault, not the
            # database, and retrying the same request can never succeed.
            log.info("refused a value the database cannot hold: %s", exc.__class__.__name__)
            return JSONResponse(
                error_body("invalid_value", "a value in the request cannot be stored or looked up"),
                422,
            )
        # The write was not committed: the caller must retry, never assume success.
        log.warning("dependency unavailable: %s", exc)
        return JSONResponse(
            error_body("unavailable", "a dependency is unavailable; retry later"),
            503,
            headers={"Retry-After": "1"},
        )


def _sqlstate(exc: Exception) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of this path takes (asked of the router, included routers too)."""
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


class RequestContextMiddleware:
    """Request id in and out (X-Request-ID), latency histogram by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = incoming or uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            http_request_seconds.labels(
                self.service, scope["method"], template, f"{status // 100}xx"
            ).observe(time.perf_counter() - started)
            request_id.reset(token)


def operations_router(readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (it says nothing of its dependencies)."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready when every dependency answers and every background worker runs."""
        try:
            checks = dict(await readiness(request))
        except Exception as error:
            log.warning("readiness check failed: %s", error)
            checks = {"readiness_check": False}
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: Sequence[APIRouter],
    readiness: ReadinessCheck,
    authenticator: AuthenticatorScope,
    settings: Settings | None = None,
) -> FastAPI:
    """The FastAPI app of one service, with everything the services have in common.

    Security: API keys are verified against the `auth` schema (services/auth; the
    authenticator is built around the service's own lifespan and kept at app.state.auth),
    and LimitsMiddleware caps body sizes and request rates. Refuses CDTT_AUTH=off with
    CDTT_ENV=production.
    """
    config = settings or Settings()
    check_auth_allowed(config)

    @asynccontextmanager
    async def lifespan_with_auth(app: FastAPI) -> AsyncIterator[None]:
        async with authenticator(config, service) as verified_keys:
            app.state.auth = verified_keys
            async with lifespan(app):
                yield

    async def readiness_with_auth(request: Request) -> Mapping[str, bool]:
        checks = dict(await readiness(request))
        if config.auth:
            checks["auth_database"] = await request.app.state.auth.reachable()
        return checks

    app = FastAPI(title=title, description=description, version="1", lifespan=lifespan_with_auth)
    install_error_handlers(app)
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=config.max_body_bytes,
        # Without keys there is nothing to count per key: demos run unthrottled.
        rate_per_second=config.rate_limit_per_second if config.auth else None,
        body_timeout_seconds=config.body_timeout_seconds,
        verified=_verified_recently,
    )
    app.add_middleware(RequestContextMiddleware, service=service)
    app.include_router(operations_router(readiness_with_auth))

    @app.get("/asyncapi.yaml", tags=["operations"], response_class=Response)
    async def asyncapi() -> Response:
        """The AsyncAPI 3 document of both event streams (the same for every service)."""
        return Response(asyncapi_yaml(), media_type="application/yaml")

    for router in routers:
        app.include_router(router)
    document_security_errors(app)
    return app


def _verified_recently(scope: Scope, presented: str) -> bool:
    authenticator: Authenticator | None = getattr(scope["app"].state, "auth", None)
    return authenticator is not None and authenticator.verified(presented)


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def document_security_errors(app: FastAPI) -> None:
    """Add the answers any /v1 route may give (400, 401, 403, 408, 413, 429) to OpenAPI."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in document.get("paths", {}).items():
            if path in UNLIMITED_PATHS:
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                extra = {"429": "more requests per second than the limit (see Retry-After)"}
                if operation.get("security"):
                    extra["401"] = "no API key, or one that is unknown, malformed or revoked"
                    extra["403"] = "the key's role or province does not allow this"
                if "requestBody" in operation:
                    extra["400"] = "the body cannot be read (not UTF-8 JSON)"
                    extra["413"] = "the request body is larger than CDTT_MAX_BODY_BYTES"
                    extra["408"] = "the body stopped arriving for CDTT_BODY_TIMEOUT_SECONDS"
                for status, description in extra.items():
                    responses.setdefault(status, {"description": description, "content": error})
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
