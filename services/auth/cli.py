"""`cdtt keys create|list|revoke`: API keys in the `auth` schema, straight in the database.

Managing keys needs the database (CDTT_AUTH_DATABASE_URL, else CDTT_DATABASE_URL), not
an HTTP endpoint: whoever runs these commands holds the database already, which is what
`admin` means here. A new key is printed once, on stdout alone, so it can be piped.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from services.auth.adapters.store import create_key, list_keys, revoke_key
from services.auth.domain import KeyRuleError, StoredKey
from shared.contracts.units import Edition
from shared.runtime import reachable
from shared.runtime.db import engine_scope
from shared.runtime.migrations import migrate_auth
from shared.runtime.settings import Settings
from shared.web.keys import Role
from shared.web.spreadsheet import spreadsheet_cell

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")
console = Console(stderr=True, highlight=False)


def _scope(key: StoredKey) -> str:
    return "all" if key.province_code is None else f"{key.province_code} ({key.edition})"


async def new_key(
    settings: Settings,
    *,
    role: Role,
    province: str | None = None,
    edition: Edition | None = None,
    name: str = "",
) -> tuple[StoredKey, str]:
    """Create a key (the schema too if needed); its text is returned once, never stored."""
    async with engine_scope(settings.auth_database_url_for(), pool_size=1) as engine:
        await migrate_auth(engine)
        stored, new = await create_key(
            engine,
            role=role,
            province_code=province,
            edition=(edition or settings.edition) if province is not None else None,
            name=name,
        )
    return stored, new.text


@keys_app.command("create")
def create(
    role: Annotated[Role, typer.Option(help="publisher (writes one province), operator, admin")],
    province: Annotated[
        str | None,
        typer.Option(help="province code the key is bound to (required for publishers)"),
    ] = None,
    edition: Annotated[
        Edition | None, typer.Option(help="edition of --province (default CDTT_EDITION)")
    ] = None,
    name: Annotated[str, typer.Option(help="who holds the key, for `cdtt keys list`")] = "",
) -> None:
    """Create a key and print it once (only its SHA-256 is kept)."""
    settings = Settings()
    asyncio.run(reachable.wait_for_servers(settings, redis=False))
    try:
        stored, text = asyncio.run(
            new_key(settings, role=role, province=province, edition=edition, name=name)
        )
    except KeyRuleError as error:
        raise typer.BadParameter(str(error)) from error
    console.print(
        f"created {stored.role} key {stored.key_id} (scope: {_scope(stored)}). "
        "It is shown once, below; store it now."
    )
    typer.echo(text)


@keys_app.command("list")
def list_() -> None:
    """Every key: id, role, scope, name, created, revoked (never a secret)."""
    settings = Settings()

    async def run() -> list[StoredKey]:
        async with engine_scope(settings.auth_database_url_for(), pool_size=1) as engine:
            await migrate_auth(engine)
            return await list_keys(engine)

    # Tab-separated, whole lines: readable in a terminal, and for `cut` or a spreadsheet.
    typer.echo("key_id\trole\tprovince\tname\tcreated_at\trevoked_at")
    for key in asyncio.run(run()):
        revoked = "" if key.revoked_at is None else key.revoked_at.isoformat(timespec="seconds")
        name = str(spreadsheet_cell(key.name.replace("\t", " ")))
        fields = (key.key_id, key.role, _scope(key), name)
        typer.echo("\t".join((*fields, key.created_at.isoformat(timespec="seconds"), revoked)))


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (from `cdtt keys list`)")],
) -> None:
    """Revoke a key: every service refuses it within CDTT_AUTH_CACHE_SECONDS (2 s)."""
    settings = Settings()

    async def run() -> StoredKey | None:
        async with engine_scope(settings.auth_database_url_for(), pool_size=1) as engine:
            return await revoke_key(engine, key_id)

    revoked = asyncio.run(run())
    if revoked is None or revoked.revoked_at is None:
        console.print(f"no key {key_id!r}")
        raise typer.Exit(1)
    console.print(
        f"revoked key {revoked.key_id} ({revoked.role}, {revoked.name or 'no name'}) at "
        f"{revoked.revoked_at.isoformat()}; services refuse it within "
        f"{settings.auth_cache_seconds:g} s"
    )
