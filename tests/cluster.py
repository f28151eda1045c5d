"""A Redis Cluster for the cluster tests: CDTT_TEST_REDIS_CLUSTER_URL, else one started here.

After the environment's URL, the local `redis-server` binary (cdtt/cluster.py): 3 masters
(plus a replica each where a test needs failover) on free loopback ports. With CI=true a
cluster that cannot be had fails the run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from cdtt.cluster import local_cluster, local_cluster_possible


@contextlib.contextmanager
def find_cluster() -> Iterator[str]:
    """A cluster's URL: the environment's, else a local cluster's; skip (fail on CI) if none."""
    url = os.environ.get("CDTT_TEST_REDIS_CLUSTER_URL")
    if url:
        yield url
    elif local_cluster_possible():
        with local_cluster() as cluster:
            yield cluster.url
    else:
        message = "no Redis Cluster: set CDTT_TEST_REDIS_CLUSTER_URL or install redis-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
