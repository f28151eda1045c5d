"""A local Redis Cluster from the `redis-server` binary, for the cluster tests and the bench.

Masters (plus replicas where failover is tried) on free loopback ports, no persistence,
each node's cluster bus on a free port of its own, joined with `redis-cli --cluster
create`; started and killed through cdtt/stack.py like every other child process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from cdtt.stack import ChildProcess, free_port, spawn

START_TIMEOUT = 30.0


@dataclass
class ClusterNode:
    port: int
    bus_port: int
    process: ChildProcess | None = None

    def client(self) -> Redis:
        return Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def info(self, section: str) -> dict[str, object]:
        client = self.client()
        try:
            return dict(client.info(section))
        finally:
            client.close()


class LocalCluster:
    """`masters` masters with `replicas` replicas each, on loopback, started by `start`."""

    def __init__(self, workdir: Path, *, masters: int = 3, replicas: int = 0) -> None:
        self.workdir = workdir
        self.replicas = replicas
        self.nodes = [
            ClusterNode(free_port(), free_port()) for _ in range(masters * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        """Any node finds the others; the first is as good as any."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        for node in self.nodes:
            self.start_node(node)
        create = [
            *("redis-cli", "--cluster", "create"),
            *(f"127.0.0.1:{node.port}" for node in self.nodes),
            *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
        ]
        subprocess.run(create, check=True, capture_output=True, timeout=START_TIMEOUT)  # noqa: S603
        self.wait_healthy()

    def start_node(self, node: ClusterNode) -> None:
        """Start (or restart after a kill: it forgets its data and its cluster config)."""
        config = self.workdir / f"nodes-{node.port}.conf"
        config.unlink(missing_ok=True)
        node.process = spawn(
            f"redis-{node.port}",
            [
                *("redis-server", "--port", str(node.port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes", "--cluster-port", str(node.bus_port)),
                *("--cluster-config-file", str(config), "--cluster-node-timeout", "2000"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            os.environ,
            self.workdir / f"redis-{node.port}.log",
        )
        node.process.wait_until(node.answers, what="PING answered", within=START_TIMEOUT)

    def wait_healthy(self, within: float = START_TIMEOUT) -> None:
        """Every live node says cluster_state:ok and every slot is served."""
        deadline = time.monotonic() + within
        while not all(self._ok(node) for node in self.live_nodes()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not healthy within {within:.0f} s")
            time.sleep(0.1)

    @staticmethod
    def _ok(node: ClusterNode) -> bool:
        client = node.client()
        try:
            info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        except Exception:
            return False
        finally:
            client.close()
        # redis-py parses the reply into a dict of strings.
        return bool(info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == "16384")

    def live_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.alive()]

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.live_nodes() if n.info("replication").get("role") == "master"]

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.kill()


def local_cluster_possible() -> bool:
    """Both binaries a local cluster needs are installed."""
    return bool(shutil.which("redis-server") and shutil.which("redis-cli"))


@contextlib.contextmanager
def local_cluster(*, masters: int = 3, replicas: int = 0) -> Iterator[LocalCluster]:
    """A started cluster, killed (its data with it) when the block ends."""
    with tempfile.TemporaryDirectory(prefix="cdtt-cluster-") as workdir:
        cluster = LocalCluster(Path(workdir), masters=masters, replicas=replicas)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
