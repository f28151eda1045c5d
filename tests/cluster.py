"""A Redis Cluster for the cluster tests: CDTT_TEST_REDIS_CLUSTER_URL, else one started here.

After the environment's URL, the local `redis-server` binary: 3 masters (plus a replica
each where a test needs failover) on free loopback ports, no persistence, joined with
`redis-cli --cluster create`. With CI=true a cluster that cannot be had fails the run.
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

import pytest
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
        subprocess.run(create, check=True, capture_output=True, timeout=START_TIMEOUT)
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
            info = client.execute_command("CLUSTER INFO")
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


def _local_cluster_possible() -> bool:
    return bool(shutil.which("redis-server") and shutil.which("redis-cli"))


@contextlib.contextmanager
def local_cluster(*, replicas: int = 0) -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="cdtt-cluster-") as workdir:
        cluster = LocalCluster(Path(workdir), replicas=replicas)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


@contextlib.contextmanager
def find_cluster() -> Iterator[str]:
    """A cluster's URL: the environment's, else a local cluster's; skip (fail on CI) if none."""
    url = os.environ.get("CDTT_TEST_REDIS_CLUSTER_URL")
    if url:
        yield url
    elif _local_cluster_possible():
        with local_cluster() as cluster:
            yield cluster.url
    else:
        message = "no Redis Cluster: set CDTT_TEST_REDIS_CLUSTER_URL or install redis-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
