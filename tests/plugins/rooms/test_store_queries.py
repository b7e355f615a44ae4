"""What Aurora asks of the messages collection, recorded on the wire.

docs/ingest.md (Sharding the collection) shards `messages` on the ranged key
`{roomId: 1, streamId: 1}`. mongos sends a command to the shard(s) holding
one room's range only when the command names the room: an insert's
documents carry the whole key, a query filters on `roomId` equality. Any
other query goes to every shard. No sharded MongoDB runs here, so this
checks the half that is Aurora's: every command that ingest (writers,
history) and rooms (the room list's last message and unread counts) send
about `messages`, recorded between aurora-host and a real FerretDB while
each of those paths runs, names one room; and the unique index the
sharded collection needs is prefixed by the shard key.

The commands are Aurora's, the same on either FerretDB backend: SQLite only."""

from __future__ import annotations

import time
import uuid

import pymongo
import pytest
from bson import ObjectId

from aurora_host import AuroraHost
from mongo_wire_tap import MongoWireTap
from rooms_support import BUILD, SECRET, TIMEOUT, Client, plugin, token

COLLECTION = "messages"
SHARD_KEY = ("roomId", "streamId")


def names_one_room(filter_: dict) -> bool:
    """A filter mongos can target: roomId equal to one string."""
    return isinstance(filter_, dict) and isinstance(filter_.get("roomId"), str)


def untargeted(cmd: dict) -> str | None:
    """Why `cmd` (a command on `messages`) would reach every shard, or None."""
    verb = next(iter(cmd))
    if verb == "insert":
        for d in cmd.get("documents", []):
            if not all(isinstance(d.get(k), str) for k in SHARD_KEY):
                return f"an inserted document lacks the shard key: {d}"
        return None
    if verb == "find":
        return None if names_one_room(cmd.get("filter")) else f"find without one roomId: {cmd.get('filter')}"
    if verb == "aggregate":  # count_documents: [{$match}, ...]
        pipeline = cmd.get("pipeline") or [{}]
        match = pipeline[0].get("$match")
        return None if names_one_room(match) else f"aggregate not starting with a $match on one roomId: {pipeline}"
    if verb in ("count", "distinct"):
        return None if names_one_room(cmd.get("query")) else f"{verb} without one roomId: {cmd.get('query')}"
    if verb in ("update", "delete"):
        bad = [s["q"] for s in cmd.get(verb + "s", []) if not names_one_room(s.get("q"))]
        return f"{verb} without one roomId: {bad}" if bad else None
    if verb == "createIndexes":
        for ix in cmd.get("indexes", []):
            if ix.get("unique") and tuple(ix["key"])[:len(SHARD_KEY)] != SHARD_KEY:
                return f"a unique index the shard key does not prefix: {ix}"
        return None
    if verb in ("listIndexes", "getMore", "killCursors"):
        return None
    return f"a command this check does not know: {cmd}"


def on_messages(cmd: dict) -> bool:
    verb = next(iter(cmd))
    return cmd[verb] == COLLECTION if verb != "getMore" else cmd.get("collection") == COLLECTION


def test_the_tap_records_what_a_driver_sends(mongo_server_sqlite):
    """The relay's decoding, against pymongo: an insert_many's documents come
    in a document sequence, folded back into the command."""
    store = mongo_server_sqlite
    with MongoWireTap(store.host, store.port) as tap:
        client = pymongo.MongoClient(tap.url("tapcheck"), serverSelectionTimeoutMS=5000)
        try:
            client["tapcheck"]["c"].insert_many([{"roomId": "a", "n": i} for i in range(3)])
            assert client["tapcheck"]["c"].count_documents({"roomId": "a"}) == 3
        finally:
            client.close()
        cmds = [c for c in tap.commands() if next(iter(c)) in ("insert", "aggregate")]
        assert [next(iter(c)) for c in cmds] == ["insert", "aggregate"], cmds
        assert [d["n"] for d in cmds[0]["documents"]] == [0, 1, 2]
        assert cmds[1]["pipeline"][0] == {"$match": {"roomId": "a"}}
        assert untargeted({"find": COLLECTION, "filter": {"roomId": {"$in": ["a", "b"]}}}) is not None
        assert untargeted({"aggregate": COLLECTION, "pipeline": [{"$match": {"userId": 1}}]}) is not None
        assert untargeted({"createIndexes": COLLECTION, "indexes": [
            {"key": {"streamId": 1}, "name": "streamId_1", "unique": True}]}) is not None


@pytest.fixture
def tapped(redis_server, mongo_server_sqlite, tmp_path):
    """One aurora-host (auth, rooms, chat, ingest with history and
    unique_key roomId,streamId) whose store connection goes through a tap."""
    db = f"shardkey_{uuid.uuid4().hex[:8]}"
    store = mongo_server_sqlite
    direct = pymongo.MongoClient(store.url(db), serverSelectionTimeoutMS=5000)
    with MongoWireTap(store.host, store.port) as tap:
        stream = f"shardkey:{uuid.uuid4().hex[:6]}"
        prefix = f"sk{uuid.uuid4().hex[:6]}:"
        cfg = {"log": {"level": "info", "format": "json"},
               "redis": {"url": redis_server.url}, "mongo": {"url": tap.url(db)}, "jwt": {"secret": SECRET},
               "plugins": [{"name": "auth", "path": plugin("auth"), "config": {"redis_prefix": prefix + "auth:"}},
                           {"name": "rooms", "path": plugin("rooms"), "config": {"redis_prefix": prefix}},
                           {"name": "chat", "path": plugin("chat"), "config": {"stream": stream}},
                           {"name": "ingest", "path": plugin("ingest"),
                            "config": {"stream": stream, "history": True, "workers": 1,
                                       "unique_key": "roomId,streamId"}}]}
        host = AuroraHost.start(BUILD / "host" / "aurora-host", tmp_path, cfg)
        try:
            deadline = time.monotonic() + TIMEOUT
            while host.get("/ready").status != 200:
                assert time.monotonic() < deadline, host.stderr_tail()
                time.sleep(0.02)  # polling /ready, bounded

            def user(name: str) -> dict:
                oid = ObjectId()
                uname = f"{name}{uuid.uuid4().hex[:6]}"
                direct[db]["users"].insert_one({"_id": oid, "username": uname, "passwordHash": "x"})
                return {"id": str(oid), "name": uname}

            yield host, tap, user, direct[db]
        finally:
            assert host.stop() == (0, False), host.stderr_tail()
            direct.close()


def test_every_command_on_messages_names_one_room(tapped):
    host, tap, user, db = tapped
    me, friend = user("ann"), user("bob")
    a, b = Client(host, me), Client(host, friend)
    private, public = f"p-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    a.ok(type="room_create", room=private, visibility="private")
    a.ok(type="room_create", room=public, visibility="public")
    a.ok(type="room_invite", room=private, username=friend["name"])
    ids = []
    for room in (private, public):
        b.ok(type="join", room=room)
        a.ok(type="join", room=room)
        ids += [b.ok(type="message", room=room, text=f"{room} {n}")["id"] for n in range(60)]
    deadline = time.monotonic() + TIMEOUT
    while db[COLLECTION].count_documents({}) < len(ids):
        assert time.monotonic() < deadline, "ingest did not store the messages"
        time.sleep(0.05)  # polling for ingest, bounded

    # Each path that reads messages, with what it returns checked too.
    rooms = {r["room"]: r for r in a.ok(type="rooms")["rooms"]}  # last message and unread, per room
    assert rooms[private]["unread"] == 60 and rooms[private]["last"]["text"] == f"{private} 59"
    page = a.ok(type="history", room=private, limit=50)
    assert len(page["messages"]) == 50 and page["next_before"]
    rest = a.ok(type="history", room=private, before=page["next_before"], limit=50)
    assert len(rest["messages"]) == 10
    got = host.get(f"/api/rooms/{public}/messages?limit=5", headers={"Authorization": f"Bearer {token(me)}"})
    assert got.status == 200, got.body

    cmds = [c for c in tap.commands() if on_messages(c)]
    verbs = {next(iter(c)) for c in cmds}
    assert {"insert", "find", "aggregate", "createIndexes"} <= verbs, verbs  # every path was seen
    problems = [why for c in cmds if (why := untargeted(c))]
    assert problems == [], problems[:5]
    index_names = {ix["name"] for ix in db[COLLECTION].list_indexes()}
    assert "roomId_1_streamId_1" in index_names and "streamId_1" not in index_names, index_names
    for c in (a, b):
        c.close()
