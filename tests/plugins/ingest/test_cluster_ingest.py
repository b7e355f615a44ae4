"""ingest on redis.mode "cluster" (docs/scaling.md): each shard stream
chat:messages:{s} has its own consumers in the group mongo_workers, on the
master of its slot. What test_recovery checks in single mode, per shard: a
poison entry in every shard is dead-lettered into that shard's dead-letter
stream after N tries without blocking the others; a consumer process killed
with SIGKILL mid-batch loses nothing (its entries are claimed); every entry
is stored once, keyed by (roomId, streamId) since two shards may make the
same id."""

from __future__ import annotations

import signal
import uuid

import pymongo
import pytest
from redis.cluster import ClusterNode, RedisCluster

from ingest_support import INGEST, require, wait_for, wait_ready
from ingest_streams import chat_fields
from real_servers import ClusterTopology

SHARDS = 4
PER_SHARD = 300
FAST = {"claim_idle_ms": 300, "claim_interval_ms": 100, "block_ms": 200, "backoff_initial_ms": 50,
        "max_deliveries": 3, "batch": 50, "history": False}


@pytest.fixture(scope="module")
def cluster():
    c = ClusterTopology.start()
    yield c
    c.stop()


def group_state(rc: RedisCluster, stream: str) -> tuple[int, int]:
    for g in rc.xinfo_groups(stream):
        if g["name"] == "mongo_workers":
            return g["pending"], g["lag"]
    return -1, -1


def test_poison_per_shard_and_a_killed_consumer_lose_nothing(cluster, mongo_server, start_host):
    db = f"cluster_ingest_{uuid.uuid4().hex[:8]}"
    mongo = pymongo.MongoClient(mongo_server.url(db), serverSelectionTimeoutMS=5000)
    coll = mongo[db]["messages"]
    rc = RedisCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in cluster.nodes[:2]], decode_responses=True)
    prefix = f"ci{uuid.uuid4().hex[:6]}"

    def config(name: str) -> dict:
        return {"log": {"level": "info", "format": "json"},
                "redis": {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS},
                "mongo": {"url": mongo_server.url(db)},
                "plugins": [{"name": "ingest", "path": require(INGEST),
                             "config": {"stream": f"{prefix}:messages", "dead_letter_stream": f"{prefix}:dead",
                                        "workers": 1, "consumer_name": name, **FAST}}]}
    try:
        # The victim alone first: with a second process already blocked in
        # XREADGROUP, that one could take every entry before the victim's
        # consumers read (seen once under ASan: the victim never held one).
        victim = start_host(config("victim"), "victim")
        wait_ready(victim)
        expected, poison = set(), {}
        for s in range(SHARDS):
            stream = f"{prefix}:messages:{{{s}}}"
            p = rc.pipeline(transaction=False)
            for i in range(PER_SHARD):
                if i == 10:
                    p.xadd(stream, {"roomId": f"room{s}", "userId": "anon-7f3a-12", "text": "poison",
                                    "username": "anonymous"})
                else:
                    p.xadd(stream, chat_fields(i, room=f"room{s}"))
            ids = p.execute()
            poison[s] = ids[10]
            expected |= {(f"room{s}", sid) for k, sid in enumerate(ids) if k != 10}
        # Mid-batch: the victim's consumers hold delivered, unacknowledged entries.
        def victim_pending() -> int:
            n = 0
            for s in range(SHARDS):
                try:
                    n += sum(c["pending"] for c in rc.xinfo_consumers(f"{prefix}:messages:{{{s}}}", "mongo_workers")
                             if c["name"].startswith("victim"))
                except Exception:  # noqa: BLE001 - the group may not exist yet
                    pass
            return n
        wait_for(victim_pending, "the victim to hold a batch", timeout=10, interval=0.005)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        # The survivor claims what the victim held and stores the rest.
        steady = start_host(config("steady"), "steady")
        wait_ready(steady)

        wait_for(lambda: coll.count_documents({}) >= len(expected), "every good entry stored", timeout=60,
                 interval=0.2)
        got = [(d["roomId"], d["streamId"]) for d in coll.find({}, {"_id": 0, "roomId": 1, "streamId": 1})]
        assert len(got) == len(set(got)) == len(expected) and set(got) == expected
        for s in range(SHARDS):
            dead = wait_for(lambda s=s: rc.xrange(f"{prefix}:dead:{{{s}}}"), f"shard {s}'s dead letter", timeout=30)
            assert [d[1]["originalId"] for d in dead] == [poison[s]]
            wait_for(lambda s=s: group_state(rc, f"{prefix}:messages:{{{s}}}") == (0, 0), f"shard {s} drained",
                     timeout=30, interval=0.2)
        m = steady.metrics()
        # (The dead streams above hold each poison once; the victim, killed at
        # its first batch, has dead-lettered none unless it lived through 3 tries.)
        assert m.total("aurora_ingest_dead_letters_total") <= SHARDS
        wait_for(lambda: steady.metrics().total("aurora_ingest_pending") == 0, "pending summed to 0", timeout=10)
        assert steady.stop() == (0, False), steady.stderr_tail()
    finally:
        rc.close()
        mongo.close()
