"""The layout's import rules, read from the source (AST), so the structure cannot drift.

- shared/contracts is the stable contract a provincial developer reads: it imports
  nothing of ours outside itself;
- shared/ is a library under the services: it imports no service;
- services import `shared`, never each other; the one exception is services/auth, which
  every service's composition root (bootstrap.py) builds its key verifier from;
- use cases decide and call ports: no SQLAlchemy, no adapters in any use_cases.py;
- a service's tables are its own: nothing outside services/<svc>/ names its schema in SQL
  (tests and bench/ excepted: they set up and inspect state directly).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "activity", "aggregator", "auth")
# bench/ is left out on purpose: its raw baselines are hand-written SQL on the services'
# tables (that is what they measure against), and it seeds national-scale data directly.
PRODUCTION = ("shared", "services", "cdtt")
COMPOSITION_ROOT_IMPORTS = {"services.auth.bootstrap"}
# SQL as this codebase writes it: upper-case keywords (prose and stream names are not SQL).
SQL_VERB = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|TRUNCATE|FROM|JOIN|COPY)\b")


def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[str]:
    """Every module an import statement names, with relative imports made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base
            # `from shared import contracts` names the module shared.contracts
            yield from (f"{base}.{alias.name}" for alias in node.names)


def ours(module: str) -> bool:
    return module.split(".")[0] in ("shared", "services", "cdtt")


def service_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def test_the_rules_see_every_layer() -> None:
    """Guards the guards: a renamed folder must not leave a rule checking nothing."""
    for folder in ("shared/contracts", "shared/web", "shared/messaging", "shared/runtime"):
        assert list(python_files(folder)), folder
    for service in SERVICES:
        assert list(python_files(f"services/{service}")), service
    assert len(list(ROOT.glob("services/*/use_cases.py"))) >= 3


@pytest.mark.parametrize("path", list(python_files("shared/contracts")), ids=str)
def test_contracts_import_nothing_of_ours_outside_themselves(path: Path) -> None:
    outside = {
        m for m in imported_modules(path) if ours(m) and not m.startswith("shared.contracts")
    }
    assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


@pytest.mark.parametrize("path", list(python_files("shared")), ids=str)
def test_shared_imports_no_service(path: Path) -> None:
    services = {m for m in imported_modules(path) if m.split(".")[0] in ("services", "cdtt")}
    assert not services, f"{path.relative_to(ROOT)} imports {sorted(services)}"


@pytest.mark.parametrize("path", list(python_files("services")), ids=str)
def test_no_service_imports_another(path: Path) -> None:
    own = service_of(module_name(path))
    foreign = {
        m
        for m in imported_modules(path)
        if service_of(m) not in (None, own)
        and not (
            path.name == "bootstrap.py"
            and any(m == root or m.startswith(root + ".") for root in COMPOSITION_ROOT_IMPORTS)
        )
    }
    assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", sorted(ROOT.glob("services/*/use_cases.py")), ids=str)
def test_use_cases_import_no_sqlalchemy_and_no_adapters(path: Path) -> None:
    infrastructure = {
        m
        for m in imported_modules(path)
        if m.split(".")[0] in ("sqlalchemy", "asyncpg", "redis", "faststream") or ".adapters" in m
    }
    assert not infrastructure, f"{path.relative_to(ROOT)} imports {sorted(infrastructure)}"


def sql_strings(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_VERB.search(node.value)
        ):
            yield node.lineno, node.value


@pytest.mark.parametrize("path", list(python_files(*PRODUCTION)), ids=str)
def test_nothing_names_another_services_schema_in_sql(path: Path) -> None:
    own = service_of(module_name(path))
    foreign_schemas = [s for s in SERVICES if s != own]
    # A schema-qualified name, not a stream (`registry.events.v1`) or a module path.
    pattern = re.compile(r"\b(" + "|".join(foreign_schemas) + r")\.(?!events\.v)[a-z_]+\b")
    found = [
        f"line {line}: {match.group(0)}"
        for line, text in sql_strings(path)
        for match in pattern.finditer(text)
        if not ours(match.group(0))  # a module path in prose, not a table
    ]
    assert not found, f"{path.relative_to(ROOT)} reads another service's tables: {found}"


def test_the_sql_rule_catches_a_foreign_table(tmp_path: Path) -> None:
    """The last rule's detector, on a file that breaks it."""
    offender = tmp_path / "offender.py"
    offender.write_text('QUERY = "SELECT count(*) FROM registry.teams WHERE status = 1"\n')
    texts = [text for _, text in sql_strings(offender)]
    assert texts
    assert re.search(r"\bregistry\.[a-z_]+\b", texts[0])
