"""Chat on redis.mode "cluster" (docs/scaling.md): a real Redis Cluster of
three masters and three replicas made by `redis-cli --cluster create` on
loopback, and two aurora-host replicas in front of it.

Each room lives on one shard (chat:messages:{s}, channel chat.{s}.<room>,
s = CRC16(room) mod stream_shards), so its messages are stored and published
on one master, in order; the fan-out SSUBSCRIBEs each room's shard channel
on that master while a local member is in the room."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pymongo
import pytest
import redis as redis_py

from aurora_host import AuroraHost, HostStartError
from chat_support import (BUILD, HOST, TIMEOUT, Client, chat_config, replica_attached_after, require, wait_presence,
                          wait_ready, wait_recorded)
from real_servers import ClusterTopology

INGEST = BUILD / "plugins" / "ingest.so"

SHARDS = 8
ROOMS = [f"room{k}" for k in range(50)]
CLIENTS = 20
ROOMS_PER_CLIENT = 7  # max_rooms is 8 with the automatic general
PER_ROOM = 5  # messages each client sends to each of its rooms


@pytest.fixture(scope="module")
def cluster():
    c = ClusterTopology.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def database(mongo_server):
    name = f"cluster_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(mongo_server.url(name), serverSelectionTimeoutMS=5000)
    yield mongo_server.url(name), client[name]["messages"]
    client.close()


@pytest.fixture(scope="module")
def replicas(cluster, database, tmp_path_factory):
    """Two aurora-host replicas, each with chat and ingest (a consumer per
    shard stream, all in the group mongo_workers)."""
    redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
    hosts = []
    for i in range(2):
        cfg = chat_config(redis)
        cfg["mongo"] = {"url": database[0]}
        cfg["plugins"].append({"name": "ingest", "path": require(INGEST),
                               "config": {"history": False, "workers": 2, "consumer_name": f"replica{i}"}})
        hosts.append(AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp(f"cluster{i}"), cfg))
        wait_ready(hosts[-1], deadline_s=30)
    yield hosts
    for h in hosts:
        h.stop()


def masters(cluster) -> list[redis_py.Redis]:
    out = []
    for n in cluster.running():
        r = redis_py.Redis(host=n.host, port=n.port, socket_timeout=5, decode_responses=True)
        if r.info("replication")["role"] == "master":
            out.append(r)
    return out


def user(i: int) -> str:
    """A 24-hex name: the probe plugin makes it the userId, and the seed's
    schema (ingest) stores userId as an ObjectId."""
    return f"{i + 1:024x}"


def rooms_of(i: int) -> list[str]:
    return [ROOMS[(i * ROOMS_PER_CLIENT + k) % len(ROOMS)] for k in range(ROOMS_PER_CLIENT)]


def join_all(c: Client, rooms: list[str]) -> None:
    for room in rooms:
        c.send(type="join", room=room, ref=f"j-{room}")
    for room in rooms:
        c.wait(lambda f, room=room: f.get("type") == "joined" and f.get("room") == room, f"joined {room}")


def take(c: Client, want: int, kind: str = "message", timeout: float = TIMEOUT) -> list[dict]:
    """Every frame of `kind` until `want` of them, then whatever else is
    already there (a duplicate would be counted)."""
    got = [f for f in c.frames if f.get("type") == kind]
    c.frames = [f for f in c.frames if f.get("type") != kind]
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        try:
            f = json.loads(c.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
        (got if f.get("type") == kind else c.frames).append(f)
    return got


def stream_id(s: str) -> tuple[int, int]:
    ms, seq = s.split("-")
    return int(ms), int(seq)


def persisted(coll, want: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    docs: list[dict] = []
    while time.monotonic() < deadline:
        docs = list(coll.find({}, {"_id": 0, "roomId": 1, "streamId": 1}))
        if len(docs) >= want:
            return docs
        time.sleep(0.1)  # polling MongoDB for ingest's progress, bounded by the deadline
    return docs


def test_fifty_rooms_on_three_masters_every_message_once_in_order(cluster, replicas, database):
    clients = [Client(replicas[i % 2], user(i)) for i in range(CLIENTS)]
    for c in clients:
        c.settled()
    for i, c in enumerate(clients):
        join_all(c, rooms_of(i))
    members = defaultdict(list)  # room -> client indexes
    for i in range(CLIENTS):
        for room in rooms_of(i):
            members[room].append(i)
    assert set(members) == set(ROOMS)
    # Every room has members on both replicas, or at least two members.
    assert all(len(m) >= 2 for m in members.values())

    for n in range(PER_ROOM):
        for i, c in enumerate(clients):
            for room in rooms_of(i):
                c.send(type="message", room=room, text=f"{i}:{room}:{n}", ref=f"{room}-{n}")
    sent_ids: dict[str, list[tuple[str, str]]] = defaultdict(list)  # room -> (id, text)
    for i, c in enumerate(clients):
        acks = take(c, len(rooms_of(i)) * PER_ROOM, kind="ack")
        acks = [a for a in acks if "id" in a]
        assert len(acks) == len(rooms_of(i)) * PER_ROOM, f"user{i}: {len(acks)} acks; {c.frames[-5:]}"
        assert not any(a.get("duplicate") for a in acks)
        for a in acks:
            room, n = a["ref"].rsplit("-", 1)
            sent_ids[room].append((a["id"], f"{i}:{room}:{n}"))

    total = sum(len(v) for v in sent_ids.values())
    assert total == CLIENTS * ROOMS_PER_CLIENT * PER_ROOM
    for i, c in enumerate(clients):
        want = sum(len(sent_ids[room]) for room in rooms_of(i))
        got = take(c, want)
        by_room = defaultdict(list)
        for m in got:
            by_room[m["room"]].append(m)
        for room in rooms_of(i):
            expected = sorted(sent_ids[room], key=lambda p: stream_id(p[0]))
            seen = [(m["id"], m["text"]) for m in by_room[room]]
            assert seen == expected, f"user{i} in {room}: {len(seen)} of {len(expected)}, or out of order"
        assert set(by_room) <= set(rooms_of(i)) | {"general"}

    # Persisted once each: one document per (room, stream id), and nothing else.
    docs = persisted(database[1], total)
    keys = sorted((d["roomId"], d["streamId"]) for d in docs)
    assert keys == sorted((room, i) for room, ids in sent_ids.items() for i, _ in ids)

    # The rooms are spread: each master holds some of the shard streams.
    holding = [len(r.keys("chat:messages:*")) for r in masters(cluster)]
    assert len(holding) == 3 and all(h > 0 for h in holding), holding

    # Resume on the other replica: user0 leaves, its rooms go on, it comes
    # back on replica B and gets exactly what it missed, then live.
    c0 = clients[0]
    last = {room: max((p[0] for p in sent_ids[room]), key=stream_id) for room in rooms_of(0)}
    c0.close()
    others = {room: next(i for i in members[room] if i != 0) for room in rooms_of(0)}
    missed = defaultdict(list)
    for room, i in others.items():
        for n in range(3):
            clients[i].send(type="message", room=room, text=f"missed {room} {n}", ref=f"m-{room}-{n}")
    for i in set(others.values()):
        sends = 3 * sum(1 for j in others.values() if j == i)
        acks = [a for a in take(clients[i], sends, kind="ack") if "id" in a]
        assert len(acks) == sends
        for a in acks:
            missed[a["ref"].rsplit("-", 1)[0].removeprefix("m-")].append(a["id"])
    missed = {room: sorted(ids, key=stream_id) for room, ids in missed.items()}

    back = Client(replicas[1], user(0))  # user0 was on replica A (index 0)
    back.settled()
    for room in rooms_of(0):
        back.send(type="resume", room=room, since=last[room], ref=f"r-{room}")
    done = take(back, len(rooms_of(0)), kind="resumed")
    assert sorted(d["room"] for d in done) == sorted(rooms_of(0))
    assert all(d["complete"] and d["count"] == 3 for d in done), done
    got = take(back, 3 * len(rooms_of(0)))
    for room in rooms_of(0):
        assert [m["id"] for m in got if m["room"] == room] == missed[room], room
    # Live after the resume, once.
    room = rooms_of(0)[0]
    clients[others[room]].send(type="message", room=room, text="live", ref="live")
    live = take(back, 1)
    assert [m["text"] for m in live] == ["live"]
    assert not [f for f in back.frames if f.get("type") == "message"], "a duplicate"
    # ...and everything sent meanwhile persisted once too.
    want = total + sum(len(v) for v in missed.values()) + 1
    assert len({(d["roomId"], d["streamId"]) for d in persisted(database[1], want)}) == want
    assert database[1].count_documents({}) == want
    for c in clients[1:] + [back]:
        c.close()


def test_changes_and_receipts_work_on_every_shard(cluster, replicas, database):
    """Edit, delete, react and read receipts in six rooms spread over the
    shards: each script's keys share the room's hash tag (any room would
    show a CROSSSLOT), and the changes reach the other replica and MongoDB."""
    a, b = replicas
    rooms = [f"chg-{k}-{uuid.uuid4().hex[:4]}" for k in range(6)]
    # Each wait for an answer names its type: a change's live event carries
    # its sender's ref too, and may come first.
    alice, bob = Client(a, user(90)), Client(b, user(91))
    for c in (alice, bob):
        c.settled()
        join_all(c, rooms)
    for room in rooms:
        alice.send(type="message", room=room, text="first", ref=f"m-{room}")
        mid = alice.wait(lambda f, room=room: f.get("ref") == f"m-{room}" and f.get("type") == "ack", "ack")["id"]
        alice.send(type="edit", room=room, id=mid, text="first, edited", ref=f"e-{room}")
        assert alice.wait(lambda f, room=room: f.get("ref") == f"e-{room}" and f.get("type") in ("ack", "error"), "edit ack")["type"] == "ack"
        bob.send(type="react", room=room, id=mid, emoji="\U0001F44D", ref=f"r-{room}")
        assert bob.wait(lambda f, room=room: f.get("ref") == f"r-{room}" and f.get("type") in ("ack", "error"), "react ack")["type"] == "ack"
        bob.wait(lambda f, room=room: f.get("type") == "edit" and f.get("room") == room, "the edit on b")
        alice.wait(lambda f, room=room: f.get("type") == "reaction" and f.get("room") == room, "the reaction on a")
        bob.send(type="read", room=room, id=mid, ref=f"read-{room}")
        alice.wait(lambda f, room=room: f.get("type") == "receipts" and f.get("room") == room, "bob's receipt on a")
        alice.send(type="delete", room=room, id=mid, ref=f"d-{room}")
        assert alice.wait(lambda f, room=room: f.get("ref") == f"d-{room}" and f.get("type") in ("ack", "error"), "delete ack")["type"] == "ack"
    coll = database[1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and coll.count_documents({"roomId": {"$in": rooms}, "status": "deleted"}) < 6:
        time.sleep(0.1)  # polling MongoDB for ingest's progress, bounded by the deadline
    assert coll.count_documents({"roomId": {"$in": rooms}, "status": "deleted"}) == 6
    alice.close()
    bob.close()


@pytest.mark.parametrize("redis,why", [
    ({"mode": "cluster"}, "'redis.nodes': mode \"cluster\" needs at least one seed node"),
    ({"mode": "cluster", "nodes": ["127.0.0.1"]}, "'redis.nodes': '127.0.0.1' is not host:port"),
    ({"mode": "cluster", "nodes": ["127.0.0.1:7000"], "url": "redis://127.0.0.1/2"},
     "'redis.url': a Redis Cluster has database 0 only"),
    ({"nodes": ["127.0.0.1:7000"]}, "'redis.nodes': needs \"mode\": \"cluster\""),
])
def test_a_wrong_cluster_section_is_refused_with_its_key(tmp_path, redis, why):
    cfg = {"redis": redis, "plugins": [{"name": "chat", "path": require(BUILD / "plugins" / "chat.so")}]}
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    assert why in str(err.value), str(err.value)[-2000:]


def test_ingest_refuses_the_seeds_unique_key_in_cluster_mode(tmp_path):
    """unique_key "streamId" on a cluster would take two shards' equal ids
    for one message: refused at start, naming the setting (no cluster is
    needed: the check comes before any connection)."""
    cfg = {"redis": {"mode": "cluster", "nodes": ["127.0.0.1:7000"], "stream_shards": SHARDS},
           "plugins": [{"name": "ingest", "path": require(INGEST), "config": {"unique_key": "streamId", "history": False}}]}
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    assert 'setting \\"unique_key\\" \\"streamId\\" cannot be used in cluster mode' in str(err.value), \
        str(err.value)[-2000:]


# ---- a master killed under load ---------------------------------------------

LAG_BYTES = 1 << 20
WINDOW = 100  # messages in flight per round
TEXT = "x" * 3000  # large, so that the replication stream outgrows the socket buffers quickly
RATELIMIT = BUILD / "plugins" / "ratelimit.so"


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def stream_of(room: str) -> str:
    return f"chat:messages:{{{crc16(room.encode()) % SHARDS}}}"


def owner(cluster, key: str):
    """The master node serving `key`, and its replicas."""
    any_node = cluster.running()[0]
    r = redis_py.Redis(host=any_node.host, port=any_node.port, decode_responses=True)
    slot = r.execute_command("CLUSTER", "KEYSLOT", key)
    for first, last, master, *_ in r.execute_command("CLUSTER", "SLOTS"):
        if first <= slot <= last:
            port = master[1]
    r.close()
    master = next(n for n in cluster.nodes if n.port == port)
    with redis_py.Redis(host=master.host, port=master.port, decode_responses=True) as m:
        info = m.info("replication")  # slave0: {ip, port, state, offset, lag}, ...
    ports = {v["port"] for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)}
    return master, [n for n in cluster.nodes if n.port in ports]


class Sender:
    """One client sending to one room in rounds, keeping every answer."""

    def __init__(self, client: Client, room: str):
        self.c, self.room = client, room
        self.n = 0
        self.acked: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def round(self, count: int = WINDOW) -> tuple[int, int]:
        refs = []
        for _ in range(count):
            self.n += 1
            refs.append(f"m{self.n}")
            self.c.send(type="message", room=self.room, text=f"m{self.n} {TEXT}", ref=f"m{self.n}")
        acks = errors = 0
        pending = set(refs)
        while pending:
            f = self.c.wait(lambda f: f.get("type") in ("ack", "error") and f.get("ref") in pending, "an answer")
            pending.discard(f["ref"])
            if f["type"] == "ack":
                self.acked[f["ref"]] = f["id"]
                acks += 1
            else:
                self.errors[f["ref"]] = f["code"]
                errors += 1
        self.c.frames = [f for f in self.c.frames if f.get("type") != "message"]
        return acks, errors


def live_again(sender: "Sender", member: Client, after: str) -> str:
    """Sends one message at a time until `member` gets one live (its room's
    subscription has moved); returns that message's id."""
    deadline = time.monotonic() + 10
    while True:
        assert sender.round(1) == (1, 0)
        tail = sender.acked[f"m{sender.n}"]
        try:
            member.wait(lambda f: f.get("type") == "message" and f.get("id") == tail, "live", timeout=0.5)
            return tail
        except (AssertionError, TimeoutError):  # not live yet: one more
            assert time.monotonic() < deadline, f"no live message 10 s after {after}"


def served_by(cluster, node) -> tuple[int, int]:
    """The slot range a master serves (one range: `redis-cli --cluster create`'s)."""
    r = redis_py.Redis(host=node.host, port=node.port, decode_responses=True)
    try:
        for first, last, m, *_ in r.execute_command("CLUSTER", "SLOTS"):
            if m[1] == node.port:
                return first, last
    finally:
        r.close()
    raise AssertionError(f"{node.port} serves no slot")


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["no-wait", "wait-1"])
def test_a_killed_master_is_replaced_without_restarting_aurora(tmp_path, wait_replicas):
    """kill -9 of the master that serves a busy room, its replicas made to
    lag first (SIGSTOP until the master holds LAG_BYTES of replication stream
    for them): sends are answered `unavailable` until the cluster promotes a
    replica, then go on through the same aurora-host processes; the other
    aurora-host's member gets live messages again (its shard subscription
    moved) and a resume fills the gap; ratelimit runs its script on the new
    master. Counts acknowledged messages the new master lacks: some without
    `wait_replicas`, none with it. Two replicas per master, so that after a
    failover one is left to satisfy `wait_replicas: 1`."""
    cluster = ClusterTopology.start(replicas=2)
    hosts = []
    try:
        redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
        chat = {"wait_replicas": wait_replicas, "wait_timeout_ms": 300}
        a = AuroraHost.start(Path(require(HOST)), tmp_path / "a", chat_config(redis, **chat))
        cfg = chat_config(redis, **chat)  # b also limits: 5 messages per user and room per second
        cfg["plugins"].insert(1, {"name": "ratelimit", "path": require(RATELIMIT),
                                  "config": {"on_redis_error": "allow", "room_max": 5}})
        b = AuroraHost.start(Path(require(HOST)), tmp_path / "b", cfg)
        hosts = [a, b]
        for h in hosts:
            wait_ready(h)
        room = "busy"
        master, replicas = owner(cluster, stream_of(room))
        assert len(replicas) == 2
        first, last = served_by(cluster, master)
        # A user whose rate-limit keys ({user}) are on that master too.
        limited = next(user(i) for i in range(200, 10000) if first <= crc16(user(i).encode()) % 16384 <= last)
        sender, receiver = Sender(Client(a, user(100)), room), Client(b, user(101))
        for c in (sender.c, receiver):
            c.settled()
            join_all(c, [room])
        assert sender.round(20) == (20, 0)
        warm = receiver.messages(20, room=room)
        assert [x["text"].split()[0] for x in warm] == [f"m{i}" for i in range(1, 21)]
        last_before_kill = warm[-1]["id"]

        m = redis_py.Redis(host=master.host, port=master.port, decode_responses=True)
        for rep in replicas:
            os.kill(rep.proc.proc.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 60
            while min(int(c.get("omem", 0)) for c in m.client_list(_type="replica")) < LAG_BYTES:
                assert time.monotonic() < deadline, (f"the replicas' backlog did not grow: "
                                                     f"{[c.get('omem') for c in m.client_list(_type='replica')]}, "
                                                     f"{len(sender.acked)} acked, {set(sender.errors.values())}, "
                                                     f"{m.info('replication')}")
                sender.round()
            acked_before_kill = len(sender.acked)
            os.kill(master.proc.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            attached_at = replica_attached_after(replicas)
        finally:
            for rep in replicas:
                os.kill(rep.proc.proc.pid, signal.SIGCONT)
        m.close()

        # The cluster's own view: when a replica became the master.
        promoted_at = None
        rs = [redis_py.Redis(host=x.host, port=x.port, socket_timeout=1, decode_responses=True) for x in replicas]

        def promoted():
            return next((x for x in rs if x.info("replication")["role"] == "master"), None)
        first_ack_at = None
        failed_during = 0
        while first_ack_at is None:
            assert time.monotonic() - killed_at < 45, f"no ack 45 s after the kill ({failed_during} unavailable)"
            if promoted_at is None and promoted():
                promoted_at = time.monotonic()
            acks, errors = sender.round(1)
            failed_during += errors
            if acks:
                first_ack_at = time.monotonic()
        while promoted_at is None:  # acked before we saw it: it is the master by now
            promoted_at = time.monotonic() if promoted() else None
        r = promoted()
        assert set(sender.errors.values()) <= {"unavailable"}, set(sender.errors.values())
        outage_s, failover_s = first_ack_at - killed_at, promoted_at - killed_at

        # The member on the other replica: live again once its subscription
        # has moved to the new master...
        tail = live_again(sender, receiver, "the failover")
        # ...and a resume from the last message it had before the kill sends
        # the rest: every message the new master holds, none twice.
        since = last_before_kill
        for n in range(20):  # resume_max_bytes (1 MiB) per answer: the client asks again from last_id
            receiver.send(type="resume", room=room, since=since, ref=f"after{n}")
            done = receiver.wait(lambda f, n=n: f.get("type") == "resumed" and f.get("ref") == f"after{n}", "resumed")
            since = done["last_id"]
            if done["complete"]:
                break
        assert done["complete"], done
        got = [f["id"] for f in receiver.frames if f.get("type") == "message" and f.get("room") == room] + [tail]
        held = [e[0] for e in r.xrange(stream_of(room), min=f"({last_before_kill}")]
        assert set(held) <= set(got), f"{len(set(held) - set(got))} of {len(held)} never reached the member"
        acked_ids = set(sender.acked.values())
        stream = {e[0] for e in r.xrange(stream_of(room))}
        lost = sorted(acked_ids - stream)
        # Unavailable for the failover, then back within 1.5 s (the next
        # watchdog tick, the slot map refreshed, the scripts loaded). With
        # WAIT, counted from when the other replica is online at the new
        # master (WAIT needs it; Redis's own time, up to 4.8 s after the
        # promotion under TSan), as test_sentinel does.
        bound_s = failover_s
        if wait_replicas:
            attached_s = wait_recorded(attached_at, "no replica came online at the new master") - killed_at
            bound_s = max(failover_s, attached_s)
        print(f"\nkill -9 of a cluster master: failover {failover_s:.2f} s, unavailable for {outage_s:.2f} s "
              f"({failed_during} sends), acked before the kill {acked_before_kill}, acked-but-lost {len(lost)}"
              + (f", a replica online at the new master {attached_s:.2f} s" if wait_replicas else ""))
        if wait_replicas:
            assert lost == [], f"{len(lost)} acknowledged messages lost with wait_replicas"
        else:
            assert lost, "expected acknowledged messages lost without wait_replicas (the replicas lagged 1 MiB)"
        assert outage_s <= bound_s + 1.5, (outage_s, failover_s, bound_s)

        # ratelimit on b runs its script on the new master.
        eve = Client(b, limited)
        eve.settled()
        join_all(eve, [room])
        for i in range(7):
            eve.send(type="message", room=room, text=f"e{i}", ref=f"e{i}")
        answers = [eve.wait(lambda f, i=i: f.get("ref") == f"e{i}" and f.get("type") in ("ack", "error", "rate_limited"),
                            f"answer e{i}") for i in range(7)]
        assert [x["type"] for x in answers] == ["ack"] * 5 + ["rate_limited"] * 2, answers
        for x in rs:
            x.close()
        for c in (sender.c, receiver, eve):
            c.close()
    finally:
        for h in hosts:
            h.stop()
        cluster.stop()


def test_ingest_refuses_a_collection_with_the_single_mode_unique_index(cluster, mongo_server, tmp_path):
    """A collection carried over from single mode keeps the unique
    {streamId}: two shards' equal ids would pass for duplicates and be lost.
    Cluster-mode ingest does not write into it: it says so and is not ready."""
    name = f"cluster_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(mongo_server.url(name), serverSelectionTimeoutMS=5000)
    try:
        client[name]["messages"].create_index("streamId", unique=True, name="streamId_1")
        cfg = {"log": {"level": "info", "format": "json"},
               "redis": {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS},
               "mongo": {"url": mongo_server.url(name)},
               "plugins": [{"name": "ingest", "path": require(INGEST), "config": {"history": False}}]}
        h = AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
        try:
            deadline = time.monotonic() + 10
            while not any("streamId_1" in line for line in h.stderr_lines()):
                assert time.monotonic() < deadline, h.stderr_tail()
                time.sleep(0.05)  # polling the log for the refusal, bounded
            assert h.get("/ready").status == 503
            assert "dropIndex" in next(line for line in h.stderr_lines() if "streamId_1" in line)
        finally:
            h.stop()
    finally:
        client.close()


def test_presence_typing_and_read_markers_across_replicas(cluster, tmp_path):
    """What test_chat checks of presence in single mode, on a cluster: the
    join event and the snapshot across two aurora-host replicas (the room's
    presence key and channel on its shard's master), a killed replica's
    entries expiring; typing reaches the other replica (SPUBLISH); a read
    marker (its own slot) moves forward only."""
    redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
    a = AuroraHost.start(Path(require(HOST)), tmp_path / "pa", chat_config(redis))
    b = AuroraHost.start(Path(require(HOST)), tmp_path / "pb", chat_config(redis))
    try:
        wait_ready(a)
        wait_ready(b)
        frank, grace = Client(a, "frank"), Client(b, "grace")
        for c in (frank, grace):
            c.settled()
            join_all(c, ["lobby"])
        frank.wait(lambda f: f.get("type") == "presence" and f.get("event") == "join" and f.get("userId") == "grace"
                   and f.get("room") == "lobby", "grace's join event in lobby")
        frank.send(type="presence", room="lobby", ref="p0")
        snap = frank.wait(lambda f: f.get("ref") == "p0", "snapshot")
        assert {u["userId"] for u in snap["users"]} == {"frank", "grace"}

        grace.send(type="typing", room="lobby")
        t = frank.wait(lambda f: f.get("type") == "typing", "typing from the other replica")
        assert (t["room"], t["userId"]) == ("lobby", "grace")

        frank.send(type="message", room="lobby", text="one", ref="m1")
        first = frank.wait(lambda f: f.get("type") == "ack" and f.get("ref") == "m1", "ack")["id"]
        frank.send(type="message", room="lobby", text="two", ref="m2")
        second = frank.wait(lambda f: f.get("type") == "ack" and f.get("ref") == "m2", "ack")["id"]
        grace.send(type="read", room="lobby", id=second, ref="r2")
        assert grace.wait(lambda f: f.get("ref") == "r2", "read ack")["read"] == second
        grace.send(type="read", room="lobby", id=first, ref="r1")  # backwards: kept where it was
        assert grace.wait(lambda f: f.get("ref") == "r1", "read ack")["read"] == second

        b.kill()  # no goodbye: its entries must expire (presence_ttl_s = 3)
        assert wait_presence(frank, "lobby", {"frank"}) == {"frank"}
        frank.close()
    finally:
        a.stop()
        b.stop()


def test_a_room_whose_slot_is_migrated_keeps_working(cluster, tmp_path):
    """A live resharding of the slot a busy room lives on (CLUSTER SETSLOT
    IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE, as `redis-cli --cluster
    reshard` does), while a client keeps sending: every send is answered
    (ack, or `unavailable` while the slot's keys are split between the two
    masters: the send script's keys must be on one node), nothing
    acknowledged is lost, the member on the other replica follows the
    channel to the new master (Redis unsubscribes it on the old one), and a
    resume fills whatever it did not get live."""
    redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
    a = AuroraHost.start(Path(require(HOST)), tmp_path / "ma", chat_config(redis))
    b = AuroraHost.start(Path(require(HOST)), tmp_path / "mb", chat_config(redis))
    try:
        wait_ready(a)
        wait_ready(b)
        room = "moving"
        key = stream_of(room)
        source, _ = owner(cluster, key)
        masters_now = [n for n in cluster.running() if redis_py.Redis(
            host=n.host, port=n.port, decode_responses=True).info("replication")["role"] == "master"]
        target = next(n for n in masters_now if n.port != source.port)
        src = redis_py.Redis(host=source.host, port=source.port, decode_responses=True)
        dst = redis_py.Redis(host=target.host, port=target.port, decode_responses=True)
        slot = src.execute_command("CLUSTER", "KEYSLOT", key)

        sender, member = Sender(Client(a, user(300)), room), Client(b, user(301))
        for c in (sender.c, member):
            c.settled()
            join_all(c, [room])
        assert sender.round(10) == (10, 0)
        first = member.messages(10, room=room)
        last_before = first[-1]["id"]

        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", dst.execute_command("CLUSTER", "MYID"))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.execute_command("CLUSTER", "MYID"))
        sender.round(20)  # during the migration: the keys are still on the source
        keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
        sender.round(20)  # keys moved, slot not yet: ASK (or TRYAGAIN for a split script)
        for n in masters_now:
            redis_py.Redis(host=n.host, port=n.port).execute_command(
                "CLUSTER", "SETSLOT", slot, "NODE", dst.execute_command("CLUSTER", "MYID"))

        # After: the sends go to the new master (MOVED corrects the map)...
        deadline = time.monotonic() + 15
        while True:
            acks, _ = sender.round(5)
            if acks == 5:
                break
            assert time.monotonic() < deadline, f"sends still failing after the move: {set(sender.errors.values())}"
        assert set(sender.errors.values()) <= {"unavailable"}, set(sender.errors.values())
        # ...the member gets live messages from the new master...
        tail = live_again(sender, member, "the move")
        # ...and every acknowledged message is in the stream, now on the target.
        held = {e[0] for e in dst.xrange(key)}
        assert set(sender.acked.values()) <= held, f"{len(set(sender.acked.values()) - held)} acked messages lost"
        member.send(type="resume", room=room, since=last_before, ref="after")
        done = member.wait(lambda f: f.get("type") == "resumed" and f.get("ref") == "after", "resumed")
        assert done["complete"], done
        got = {f["id"] for f in member.frames if f.get("type") == "message" and f.get("room") == room} | {tail}
        assert {i for i in held if stream_id(i) > stream_id(last_before)} <= got
        print(f"\nslot {slot} moved {source.port} -> {target.port}: {len(sender.acked)} acked, "
              f"{len(sender.errors)} answered unavailable")
        src.close()
        dst.close()
        for c in (sender.c, member):
            c.close()
    finally:
        a.stop()
        b.stop()


def stalled(host: AuroraHost, deadline_s: float = TIMEOUT) -> None:
    """Waits until `host`'s loop stops answering (GET /health gets no answer
    within 0.2 s): the stall it was asked for has begun."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            host.get("/health", timeout=0.2)
        except TimeoutError:
            return
    pytest.fail("the loop never stopped answering")


def test_a_stalled_loop_loses_no_live_message(cluster, tmp_path):
    """A loop that did not run for 2.5 s (a slow plugin) while the room's
    master kept sending: what waits in the socket is read before any deadline
    is judged. (It used to be judged first: the first tick after the stall
    found the connection silent for longer than 1 s + redis_timeout_ms and
    dropped it, with the messages unread in it.)"""
    redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
    a = AuroraHost.start(Path(require(HOST)), tmp_path / "sa", chat_config(redis, redis_timeout_ms=500))
    b = AuroraHost.start(Path(require(HOST)), tmp_path / "sb", chat_config(redis, redis_timeout_ms=500))
    try:
        wait_ready(a)
        wait_ready(b)
        hank, iris = Client(a, "hank"), Client(b, "iris")
        for c in (hank, iris):
            c.settled()
            join_all(c, ["stalls"])
        iris.send(type="message", room="stalls", text="before", ref="m0")
        assert hank.messages(1, room="stalls")[0]["text"] == "before"  # hank's replica has the room live

        hank.send(type="stall", ms=2500)  # probe sleeps on a's service thread
        stalled(a)
        for n in range(5):
            iris.send(type="message", room="stalls", text=f"during {n}", ref=f"d{n}")
        acks = take(iris, 5, kind="ack")
        assert len(acks) == 5 and all("id" in x for x in acks), acks
        got = [m["text"] for m in hank.messages(5, room="stalls")]
        assert got == [f"during {n}" for n in range(5)]
        log = "\n".join(a.stderr_lines())
        assert "no answer to PING" not in log, log
        hank.close()
        iris.close()
    finally:
        a.stop()
        b.stop()
