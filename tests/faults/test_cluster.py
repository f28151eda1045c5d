"""A Redis Cluster (3 masters + 3 replicas, streams in 4 partitions) under load: a master
SIGKILLed, and FLUSHALL on every node.

Redis replication is asynchronous: a master killed before its replica copied its last
XADDs loses them, although the relays saw them acknowledged. The producers' outboxes keep
every sent row for the retention window, so `cdtt registry replay` and `cdtt activity
replay` after the failover send them again and the aggregator deduplicates by event_id:
`cdtt check` must then find the figures equal to the producers' recount. FLUSHALL on
every node (every stream and group gone) is recovered the same way, as on one Redis.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode as RedisNode

from cdtt.cluster import LocalCluster, local_cluster
from shared.contracts.streams import REGISTRY_EVENTS, StreamLayout
from shared.runtime.settings import Settings
from tests.faults.conftest import PROVINCE
from tests.faults.harness import EDITION, FaultSystem

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

WARMUP_SECONDS = 3.0
DOWN_SECONDS = 6.0
TAIL_SECONDS = 3.0
PARTITIONS = 4
PRODUCERS = ("registry", "activity")


@pytest.fixture
def replicated_cluster() -> Iterator[LocalCluster]:
    with local_cluster(replicas=1) as cluster:
        yield cluster


def on_cluster(settings: Settings, cluster: LocalCluster) -> Settings:
    return settings.model_copy(
        update={
            "redis_url": cluster.url,
            "redis_cluster": True,
            "stream_partitions": PARTITIONS,
        }
    )


async def master_port_of(cluster: LocalCluster, key: str) -> int:
    """The port of the master that serves `key`'s slot now (asked of the nodes still up:
    the killed master may be the one `cluster.url` names)."""
    client = RedisCluster(
        startup_nodes=[RedisNode("127.0.0.1", n.port) for n in cluster.live_nodes()]
    )
    try:
        await client.initialize()
        node = client.nodes_manager.get_node_from_slot(client.keyslot(key))
        return int(node.port)
    finally:
        await client.aclose()


async def replay_and_check(system: FaultSystem) -> str:
    """Both producers' retained outboxes sent again; `cdtt check` clean within its wait."""
    replays = await asyncio.gather(
        *(system.stack.cdtt(s, "replay", "--no-publish") for s in PRODUCERS)
    )
    for replayed in replays:
        assert replayed.returncode == 0, replayed.stderr
    checked = await system.stack.cdtt(
        "check", "--edition", EDITION, "--wait", "180", limit_seconds=240
    )
    assert checked.returncode == 0, f"cdtt check:\n{checked.stdout}\n{checked.stderr}"
    return checked.stdout.strip()


async def test_a_master_killed_under_load_fails_over_and_the_outbox_makes_up_the_rest(
    fault_settings: Settings,
    replicated_cluster: LocalCluster,
    tmp_path: Path,
    attempt: int,
    measurements: list[dict[str, Any]],
) -> None:
    settings = on_cluster(fault_settings, replicated_cluster)
    layout = StreamLayout(settings.stream_namespace, PARTITIONS, cluster=True)
    async with FaultSystem(
        settings, tmp_path, case="cluster-failover", attempt=attempt, measurements=measurements
    ) as system:
        driver = await system.under_load(WARMUP_SECONDS)
        # The master of the partition every event of the province goes to.
        port = await master_port_of(replicated_cluster, layout.key_for(REGISTRY_EVENTS, PROVINCE))
        victim = next(n for n in replicated_cluster.nodes if n.port == port)
        assert victim.process is not None
        victim.process.kill()
        await driver.run_for(DOWN_SECONDS)
        await asyncio.to_thread(replicated_cluster.wait_healthy, 60.0)
        assert await master_port_of(replicated_cluster, layout.keys(REGISTRY_EVENTS)[0]) > 0
        # Commands started from now on (replay, check) name a node that is still up: the
        # killed master may be the one the settings name, as an operator would see it.
        alive = replicated_cluster.live_nodes()[0]
        system.stack.extra_env["CDTT_REDIS_URL"] = f"redis://127.0.0.1:{alive.port}/0"
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()
        checked = await replay_and_check(system)
        for name in system.stack.processes:
            assert system.stack[name].alive(), f"{name} died:\n{system.stack.logs()}"
        assert await _all_ready(system), system.stack.logs()
        assert _accepted(ledger.answered_within(0, float("inf"))) > 0
        system.facts["check"] = checked


async def test_flushall_on_every_node_is_recovered_by_the_replay(
    fault_settings: Settings,
    replicated_cluster: LocalCluster,
    tmp_path: Path,
    attempt: int,
    measurements: list[dict[str, Any]],
) -> None:
    settings = on_cluster(fault_settings, replicated_cluster)
    async with FaultSystem(
        settings, tmp_path, case="cluster-flushall", attempt=attempt, measurements=measurements
    ) as system:
        driver = await system.under_load(WARMUP_SECONDS)
        for node in replicated_cluster.masters():
            client = node.client()
            try:
                client.flushall()
            finally:
                client.close()
        await driver.run_for(DOWN_SECONDS)
        ledger = await driver.stop()
        await replay_and_check(system)
        assert await _all_ready(system), system.stack.logs()
        assert _accepted(ledger.answered_within(0, float("inf"))) > 0


async def _all_ready(system: FaultSystem) -> bool:
    return all([await system.ready(name) for name in system.stack.processes])


def _accepted(statuses: Counter[str]) -> int:
    return sum(n for status, n in statuses.items() if status.startswith("20"))
