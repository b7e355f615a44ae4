"""auth on redis.mode "cluster" (docs/scaling.md), against a real 3-master,
3-replica Redis Cluster on loopback: the login throttle (its pipelined keys
carry the client address as a hash tag, so they share a slot), the
registration throttle and the per-user connection cap (each user's set on
its own master) behave as in single mode."""

from __future__ import annotations

import contextlib

import pytest
from redis.cluster import ClusterNode, RedisCluster

from auth_support import TRUST_LOOPBACK, auth_host_config, from_addr, post_json, unique
from real_servers import ClusterTopology
from test_connection_cap import _cap_scenario, token_for

ATTACKER = "203.0.113.66"


class _NoSingleRedis:
    url = "redis://127.0.0.1:1/0"  # replaced by the cluster section below


@pytest.fixture(scope="module")
def cluster():
    c = ClusterTopology.start()
    yield c
    c.stop()


@pytest.fixture
def rc(cluster):
    client = RedisCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in cluster.nodes[:2]],
                          decode_responses=True)
    yield client
    client.close()


def config(cluster, mongo_server, auth: dict, **extra) -> dict:
    cfg = auth_host_config(_NoSingleRedis, mongo_server, auth_config=auth, **extra)
    cfg["redis"] = {"mode": "cluster", "nodes": cluster.addresses[:2]}
    return cfg


def login(host, name, password, addr):
    return post_json(host, "/api/auth/login", {"username": name, "password": password}, headers=from_addr(addr))


def test_login_and_registration_throttles_on_a_cluster(cluster, rc, mongo_server, start_host):
    prefix = unique("cl") + ":"
    host = start_host(config(cluster, mongo_server, {
        "redis_prefix": prefix, "login_failures_before_backoff": 3, "login_backoff_base_ms": 1000,
        "login_backoff_max_ms": 4000, "login_max_failures_per_addr": 1000, "register_max_per_addr": 2},
        with_echo=False, **TRUST_LOOPBACK))
    name = unique("cl")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "right-password"},
                     headers=from_addr("192.0.2.1")).status == 200
    for _ in range(3):
        assert login(host, name, "wrong-password", ATTACKER).status == 401
    # The pair's keys and the address's count share the slot of {address}.
    wait_key = f"{prefix}login:wait:{{{ATTACKER}}}:{name}"
    assert 0 < rc.pttl(wait_key) <= 1000
    assert int(rc.get(f"{prefix}login:fail:{{{ATTACKER}}}:{name}")) == 3
    assert int(rc.get(f"{prefix}login:addr:{{{ATTACKER}}}")) == 3
    assert login(host, name, "right-password", ATTACKER).status == 429  # even the right password waits
    assert login(host, name, "right-password", "198.51.100.20").status == 200  # the owner, elsewhere

    # Registration: 2 per address per window, the third refused.
    for i in range(2):
        assert post_json(host, "/api/auth/register", {"username": unique(f"r{i}"), "password": "long-enough-pw"},
                         headers=from_addr("192.0.2.50")).status == 200
    r = post_json(host, "/api/auth/register", {"username": unique("r3"), "password": "long-enough-pw"},
                  headers=from_addr("192.0.2.50"))
    assert r.status == 429 and "retry-after" in r.headers


def test_connection_cap_on_a_cluster(cluster, rc, mongo_server, start_host):
    prefix = unique("cap") + ":"
    host = start_host(config(cluster, mongo_server, {
        "redis_prefix": prefix, "max_connections_per_user": 2, "connection_ttl_s": 3}))
    user = "0123456789abcdef" + unique("")[-8:]
    with contextlib.ExitStack() as stack:
        _cap_scenario(stack, host, rc, f"{prefix}conns:{user}", f"{host.ws_url}/", token_for(user))
