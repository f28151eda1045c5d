"""Settings every service reads from the environment (CDTT_*), resolved once in a lifespan."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Edition = Literal["2025", "legacy"]
EDITIONS: tuple[Edition, ...] = ("2025", "legacy")
ServiceName = Literal["registry", "activity", "aggregator"]
SERVICES: tuple[ServiceName, ...] = ("registry", "activity", "aggregator")


class MissingServerError(RuntimeError):
    """A server URL is needed and none is configured."""


class Settings(BaseSettings):
    """The whole configuration; services take what they need from it."""

    model_config = SettingsConfigDict(env_prefix="CDTT_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    redis_url: str | None = None
    database_url: str | None = None
    registry_database_url: str | None = None
    activity_database_url: str | None = None
    aggregator_database_url: str | None = None
    edition: Edition = "2025"
    # Prefix for every stream name, so tests and side-by-side stacks share one Redis safely.
    stream_namespace: str = ""
    outbox_retention_hours: float = Field(default=72.0, ge=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # An entry pending this long belongs to a consumer presumed dead and is reclaimed.
    reclaim_idle_ms: int = Field(default=10_000, ge=100)
    # After this many deliveries an entry goes to the dead-letter stream.
    max_deliveries: int = Field(default=5, ge=1)
    log_level: str = "INFO"

    def database_url_for(self, service: ServiceName) -> str:
        """The service's own override, else the shared server; SQLAlchemy asyncpg form."""
        url = getattr(self, f"{service}_database_url") or self.database_url
        if not url:
            raise MissingServerError(
                "No PostgreSQL configured: set CDTT_DATABASE_URL "
                f"(or CDTT_{service.upper()}_DATABASE_URL), or run `cdtt up` for embedded servers."
            )
        return sqlalchemy_url(url)

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise MissingServerError(
                "No Redis configured: set CDTT_REDIS_URL, or run `cdtt up` for embedded servers."
            )
        return self.redis_url


def sqlalchemy_url(url: str) -> str:
    """Accept plain libpq URLs and name the asyncpg driver for SQLAlchemy."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def libpq_url(url: str) -> str:
    """The same URL as plain asyncpg/libpq understands it (no SQLAlchemy driver name)."""
    return "postgresql://" + sqlalchemy_url(url).removeprefix("postgresql+asyncpg://")
