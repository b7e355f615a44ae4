"""Chat on redis.mode "cluster" (docs/scaling.md): a real Redis Cluster of
three masters and three replicas made by `redis-cli --cluster create` on
loopback, and two aurora-host replicas in front of it.

Each room lives on one shard (chat:messages:{s}, channel chat.{s}.<room>,
s = CRC16(room) mod stream_shards), so its messages are stored and published
on one master, in order; the fan-out SSUBSCRIBEs each room's shard channel
on that master while a local member is in the room."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
import redis as redis_py

from chat_support import TIMEOUT, Client, start_replica
from real_servers import ClusterTopology

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
def replicas(cluster, tmp_path_factory):
    redis = {"mode": "cluster", "nodes": cluster.addresses[:2], "stream_shards": SHARDS}
    hosts = [start_replica(tmp_path_factory.mktemp(f"cluster{i}"), redis) for i in range(2)]
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
        f = json.loads(c.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        (got if f.get("type") == kind else c.frames).append(f)
    return got


def stream_id(s: str) -> tuple[int, int]:
    ms, seq = s.split("-")
    return int(ms), int(seq)


def test_fifty_rooms_on_three_masters_every_message_once_in_order(cluster, replicas):
    clients = [Client(replicas[i % 2], f"user{i}") for i in range(CLIENTS)]
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

    back = Client(replicas[1], "user0")  # user0 was on replica A (index 0)
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
    for c in clients[1:] + [back]:
        c.close()


@pytest.mark.parametrize("plugin,config,why", [
    ("ingest", {"workers": 1}, 'does not run on Redis Cluster yet'),
    ("ratelimit", {}, 'does not run on Redis Cluster yet'),
    ("auth", {}, 'does not run on Redis Cluster yet'),
    ("chat", {"wait_replicas": 1}, 'wait_replicas is not available with redis.mode'),
])
def test_what_cluster_mode_does_not_run_yet_refuses_to_start(tmp_path, plugin, config, why):
    """A plugin that cannot run on a cluster yet says so and the host does not
    start: it must never run half-routed (a multi-key script would fail with
    CROSSSLOT on every call, or reach the wrong master)."""
    from aurora_host import AuroraHost, HostStartError, build_dir
    from chat_support import HOST, require

    so = build_dir() / "plugins" / f"{plugin}.so"
    cfg = {"redis": {"mode": "cluster", "nodes": ["127.0.0.1:1"]}, "jwt": {"secret": "a-long-enough-test-secret-0123456789"},
           "plugins": [{"name": plugin, "path": require(so), "config": config}]}
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(require(HOST), tmp_path, cfg)
    assert why in str(err.value), str(err.value)[-2000:]
