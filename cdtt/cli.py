"""Root of the `cdtt` command; each group of subcommands lives beside what it drives."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cdtt.demo.replay import app as demo_app
from cdtt.demo.simulate import app as simulate_app
from cdtt.ops.check import app as check_app
from cdtt.ops.streams import streams_app
from cdtt.stack import DEFAULT_PORTS, migrate_all
from cdtt.up import app as up_app
from services.activity.cli import activity_app
from services.aggregator.cli import aggregator_app
from services.auth.cli import keys_app
from services.registry.cli import registry_app, units_app
from shared.runtime import reachable
from shared.runtime.logging import configure_logging
from shared.runtime.settings import SERVICES, ServiceName, Settings
from shared.web.auth import check_bind_allowed

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(units_app, name="units")
app.add_typer(registry_app, name="registry")
app.add_typer(activity_app, name="activity")
app.add_typer(aggregator_app, name="aggregator")
app.add_typer(check_app)
app.add_typer(up_app)
app.add_typer(demo_app)
app.add_typer(simulate_app)
app.add_typer(keys_app, name="keys")
app.add_typer(streams_app, name="streams")


@app.command()
def migrate() -> None:
    """Create or upgrade every service's schema (Alembic)."""
    settings = Settings()
    asyncio.run(reachable.wait_for_servers(settings, redis=False))
    asyncio.run(migrate_all(settings))
    typer.echo(f"migrated: {', '.join(SERVICES)}, auth")


@app.command()
def serve(
    service: Annotated[ServiceName, typer.Argument(help="which service to run")],
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help=f"port (default {'/'.join(map(str, DEFAULT_PORTS.values()))})"),
    ] = None,
) -> None:
    """Run one service over HTTP (uvicorn), with its relay or subscribers."""
    import uvicorn

    from shared.web.connections import guarded_protocol

    settings = Settings()
    configure_logging(service, settings.log_level)
    check_bind_allowed(settings, host)
    asyncio.run(reachable.wait_for_servers(settings))
    uvicorn.run(
        f"services.{service}.bootstrap:create_app",
        factory=True,
        host=host,
        port=port or DEFAULT_PORTS[service],
        log_config=None,
        access_log=False,
        lifespan="on",
        # Slow and idle clients: idle keep-alive connections close after 5 s; the guarded
        # protocol times out and caps request heads and lets probes past the connection
        # cap (shared.web.connections), shared.web.limits times out a trickling body;
        # connections beyond CDTT_MAX_CONNECTIONS get 503.
        http=guarded_protocol(settings),
        timeout_keep_alive=5,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


def main() -> None:
    app()
