"""The shared Redis Cluster client (plugins/common/redis_cluster.h) against a
real cluster: three masters and three replicas made by `redis-cli --cluster
create` on loopback. The checks are C++ (redis_cluster_test.cpp); this
starts a fresh cluster for each of them, since they migrate slots and kill
masters."""

from __future__ import annotations

import os
import subprocess

import pytest

from aurora_host import build_dir
from real_servers import ClusterTopology

BINARY = build_dir() / "tests" / "plugins" / "common" / "redis_cluster_test"
CASES = ["RoutesEveryKeyToItsSlotAsTheServersSay", "FollowsAskDuringAMigrationAndMovedAfterIt",
         "ADeadMasterIsReplacedByItsReplica"]


@pytest.mark.parametrize("case", CASES)
def test_redis_cluster_client(case):
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: build it first")
    cluster = ClusterTopology.start()
    try:
        out = subprocess.run([str(BINARY), f"--gtest_filter=RedisClusterTest.{case}"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "AURORA_TEST_CLUSTER_NODES": ",".join(cluster.addresses)})
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
        assert "[  PASSED  ] 1 test." in out.stdout, out.stdout[-2000:]
    finally:
        cluster.stop()
