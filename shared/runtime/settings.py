"""Settings every service reads from the environment (CDTT_*), resolved once in a lifespan."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.units import Edition

ServiceName = Literal["registry", "activity", "aggregator"]
SERVICES: tuple[ServiceName, ...] = ("registry", "activity", "aggregator")


class MissingServerError(RuntimeError):
    """A server URL is needed and none is configured."""


class Settings(BaseSettings):
    """The whole configuration; services take what they need from it."""

    model_config = SettingsConfigDict(env_prefix="CDTT_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    redis_url: str | None = None
    # True: CDTT_REDIS_URL names any node of a Redis Cluster; False: one Redis; unset: asked
    # of the server (INFO cluster) when a client connects.
    redis_cluster: bool | None = None
    # Each stream split into this many partitions by province (1 keeps one stream per name).
    # Fixed for a deployment's life: a process started with another count refuses to run.
    stream_partitions: int = Field(default=1, ge=1, le=256)
    database_url: str | None = None
    registry_database_url: str | None = None
    activity_database_url: str | None = None
    aggregator_database_url: str | None = None
    edition: Edition = "2025"
    # Prefix for every stream name, so tests and side-by-side stacks share one Redis safely.
    stream_namespace: str = ""
    outbox_retention_hours: float = Field(default=72.0, ge=0)
    # How long the aggregator remembers a processed event_id (its inbox). A replayed outbox
    # row must still find its id there, so this must be at least outbox_retention_hours;
    # the excess is the margin for clock skew and for replays still waiting in a stream.
    inbox_retention_hours: float = Field(default=96.0, ge=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # An entry pending this long belongs to a consumer presumed dead and is reclaimed.
    reclaim_idle_ms: int = Field(default=10_000, ge=100)
    # After this many deliveries an entry goes to the dead-letter stream.
    max_deliveries: int = Field(default=5, ge=1)
    log_level: str = "INFO"
    # How long a command or service waits for its servers on its first connection
    # (shared/runtime/reachable.py: backoff from 0.2 s to 5 s between tries).
    connect_timeout_seconds: float = Field(default=60.0, ge=0)

    # --- security (services/auth, shared/web) ---
    # API keys on every /v1 route; False (CDTT_AUTH=off) makes every request an anonymous
    # admin, for local demos only: services refuse to start so when env is production.
    auth: bool = True
    # Where the `auth` schema (the keys) lives; default the shared server.
    auth_database_url: str | None = None
    # How long a service trusts what it last read of a key: a revocation is honoured by
    # every service within this many seconds.
    auth_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # Request bodies above this get 413 before the rest is read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A request body that stops arriving this long gets 408.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Connections (and requests in progress) one service process takes at once; 503 beyond
    # (/healthz, /readyz and /metrics still answer).
    max_connections: int = Field(default=2000, ge=10)
    # A request line and headers longer than this get 431 (shared/web/connections.py).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1_048_576)
    # A request's headers not all arrived this long after the connection opened (or after
    # the previous response) get 408; a connection that sent nothing is closed.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # uvicorn's HTTP/1.1 parser; auto takes httptools when installed. The limits above
    # hold with either.
    http_parser: Literal["auto", "httptools", "h11"] = "auto"
    # Requests per second per API key (per client address without a known key); 429 above.
    rate_limit_per_second: float = Field(default=100.0, gt=0)
    # The live stream (/v1/live): a comment line this often keeps proxies from closing a quiet
    # stream, and the key is checked again as often (a revoked key's stream ends).
    live_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # A live stream ends after this long; the browser's EventSource reconnects by itself.
    live_max_seconds: float = Field(default=3600.0, gt=0)
    # Live streams one API key may hold open at once, per process; 429 beyond.
    live_streams_per_key: int = Field(default=4, ge=1)
    # The key `cdtt demo` and `cdtt simulate` send (Authorization: Bearer), when set.
    api_key: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _inbox_covers_replays(self) -> Self:
        if self.inbox_retention_hours < self.outbox_retention_hours:
            raise ValueError(
                f"CDTT_INBOX_RETENTION_HOURS ({self.inbox_retention_hours:g}) must be at least "
                f"CDTT_OUTBOX_RETENTION_HOURS ({self.outbox_retention_hours:g}): a replayed "
                "event whose id the aggregator forgot would be counted twice"
            )
        return self

    def database_url_for(self, service: ServiceName) -> str:
        """The service's own override, else the shared server; SQLAlchemy asyncpg form."""
        url = getattr(self, f"{service}_database_url") or self.database_url
        if not url:
            raise MissingServerError(
                "No PostgreSQL configured: set CDTT_DATABASE_URL "
                f"(or CDTT_{service.upper()}_DATABASE_URL), or run `cdtt up` for embedded servers."
            )
        return sqlalchemy_url(url)

    def auth_database_url_for(self) -> str:
        """CDTT_AUTH_DATABASE_URL, else the shared server; SQLAlchemy asyncpg form."""
        url = self.auth_database_url or self.database_url
        if not url:
            raise MissingServerError(
                "No PostgreSQL for the API keys: set CDTT_DATABASE_URL (or CDTT_AUTH_DATABASE_URL)."
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
