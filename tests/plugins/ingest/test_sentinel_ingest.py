"""Ingest on redis.mode "sentinel" (docs/scaling.md): its consumers run on
worker threads with blocking connections, which ask the Sentinels where the
master is at every connect and leave a server that answers READONLY. A
planned failover (SENTINEL FAILOVER: the old master stays up and is turned
into a replica) and then a killed master: every entry of the stream reaches
MongoDB exactly once, and the group is drained on the master of the day,
without restarting aurora-host."""

from __future__ import annotations

import os
import signal

import pymongo
import redis as redis_py

from ingest_streams import chat_fields, xadd_many
from ingest_support import INGEST, SECRET, require, unique, wait_for, wait_ready
from real_servers import SentinelTopology


def master(t: SentinelTopology) -> redis_py.Redis:
    host, port = t.master_address()
    return redis_py.Redis(host=host, port=port, decode_responses=True)


def wait_moved(t: SentinelTopology, old: tuple[str, int]) -> None:
    wait_for(lambda: t.master_address() != old, "the Sentinels to name a new master", 30)


def test_ingest_follows_a_planned_and_an_unplanned_failover(mongo_server, start_host):
    t = SentinelTopology.start(replicas=2)
    db = unique("ingest")
    stream = unique("s") + ":messages"
    mongo = pymongo.MongoClient(mongo_server.url(db), serverSelectionTimeoutMS=5000)
    coll = mongo[db]["messages"]
    try:
        cfg = {"log": {"level": "info", "format": "json"}, "redis": t.host_config(),
               "mongo": {"url": mongo_server.url(db)}, "jwt": {"secret": SECRET},
               "plugins": [{"name": "ingest", "path": require(INGEST),
                            "config": {"stream": stream, "dead_letter_stream": stream + ":dead", "history": False,
                                       "workers": 2}}]}
        h = start_host(cfg)
        wait_ready(h)
        sent: list[str] = []

        def produce(n: int) -> None:
            r = master(t)
            sent.extend(xadd_many(r, stream, [chat_fields(len(sent) + i) for i in range(n)]))
            r.close()

        def stored_once(n: int) -> bool:
            return coll.count_documents({}) >= n

        produce(300)
        wait_for(lambda: stored_once(300), "300 documents", 30)

        old = t.master_address()
        t.ask("SENTINEL", "FAILOVER", t.MASTER_NAME)
        wait_moved(t, old)
        produce(300)  # to the new master; ingest must find it
        wait_for(lambda: stored_once(600), "600 documents after the planned failover", 30)

        old = t.master_address()
        victim = next(s for s in t.servers if s.port == old[1])
        os.kill(victim.proc.proc.pid, signal.SIGKILL)
        wait_moved(t, old)
        produce(300)
        wait_for(lambda: stored_once(900), "900 documents after the master was killed", 45)

        # Exactly once: one document per stream id, none missing.
        ids = [d["streamId"] for d in coll.find({}, {"streamId": 1})]
        assert len(ids) == len(set(ids)) == 900, (len(ids), len(set(ids)))
        assert set(ids) == set(sent)

        def drained() -> bool:
            groups = {g["name"]: g for g in master(t).xinfo_groups(stream)}
            g = groups.get("mongo_workers", {})
            return g.get("pending") == 0 and g.get("lag") == 0

        wait_for(drained, "the group drained on the new master", 30)
        assert h.running(), "aurora-host must not have restarted"
        wait_ready(h)
    finally:
        mongo.close()
        t.stop()
