"""Proof that the parts are real, from Python: redis-py and pymongo round trips
against the servers the session fixtures start (twin of real_parts_test.cpp)."""

import pymongo
import pytest
import redis
from pymongo.errors import BulkWriteError, DuplicateKeyError


@pytest.fixture
def r(redis_server):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def test_streams_consumer_group_round_trip(r):
    entry_id = r.xadd("chat:messages", {"roomId": "general", "userId": "u1", "text": "hello",
                                        "username": "alice"})
    assert r.xgroup_create("chat:messages", "mongo_workers", id="0", mkstream=True)
    with pytest.raises(redis.ResponseError, match="BUSYGROUP"):
        r.xgroup_create("chat:messages", "mongo_workers", id="0", mkstream=True)

    [[stream, entries]] = r.xreadgroup("mongo_workers", "w1", {"chat:messages": ">"}, count=10)
    assert stream == "chat:messages"
    assert entries == [(entry_id, {"roomId": "general", "userId": "u1", "text": "hello",
                                   "username": "alice"})]
    assert r.xpending("chat:messages", "mongo_workers")["pending"] == 1
    assert r.xack("chat:messages", "mongo_workers", entry_id) == 1
    assert r.xpending("chat:messages", "mongo_workers")["pending"] == 0


def test_publish_reaches_pattern_subscriber(r):
    p = r.pubsub()
    p.psubscribe("chat.*")
    assert p.get_message(timeout=5)["type"] == "psubscribe"
    assert r.publish("chat.general", '{"text":"hi"}') == 1
    msg = p.get_message(timeout=5)
    assert msg == {"type": "pmessage", "pattern": "chat.*", "channel": "chat.general",
                   "data": '{"text":"hi"}'}
    p.close()


def test_mongo_insert_many_unique_index_and_find(mongo_server):
    with pymongo.MongoClient(mongo_server.url("aurora_smoke_py")) as client:
        coll = client["aurora_smoke_py"]["messages"]
        coll.drop()
        coll.create_index("streamId", unique=True)
        docs = [{"streamId": f"1700000000000-{i}", "roomId": "general" if i % 2 else "random",
                 "seq": i} for i in range(100)]
        assert len(coll.insert_many(docs, ordered=False).inserted_ids) == 100
        assert coll.count_documents({}) == 100

        with pytest.raises(DuplicateKeyError) as dup:
            coll.insert_one({"streamId": "1700000000000-7", "roomId": "general"})
        assert dup.value.code == 11000

        # A retried batch: duplicates are reported per document, new ones land.
        with pytest.raises(BulkWriteError) as bulk:
            coll.insert_many([{"streamId": "1700000000000-8"}, {"streamId": "1700000000000-100"}],
                             ordered=False)
        assert [e["code"] for e in bulk.value.details["writeErrors"]] == [11000]
        assert coll.count_documents({}) == 101

        seqs = [d["seq"] for d in coll.find({"roomId": "general"}).sort("seq", -1).limit(5)]
        assert seqs == [99, 97, 95, 93, 91]
