"""The compose topology (compose.yaml) as processes on loopback, behind the
nginx configuration compose mounts: Redis, FerretDB in place of MongoDB, one
users process, two chat replicas, two ingest workers, nginx in front.

Everything a client does goes through nginx: register, log in, 20 WebSocket
clients spread over both chat replicas (checked in each host's metrics), 2,000
messages across rooms, each client receiving exactly its rooms' messages,
MongoDB holding each exactly once; then one chat replica is killed with
SIGKILL and its clients reconnect through nginx to the other one and resume
without a gap. Every wait has a deadline."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import pymongo
import pytest
import redis as redis_py
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aurora_host import build_dir, http_request
from deploy_support import Nginx, ProfileHost, StartError
from real_servers import FerretDbServer, RedisServer

pytestmark = pytest.mark.e2e

N_CLIENTS = 20
N_ROOMS = 5
ROOMS_PER_CLIENT = 3
MESSAGES_PER_CLIENT = 100  # 2,000 in all
# The chat-service profile's rate limits (ratelimit defaults): 3 messages per
# user per room and 10 per user in any second. Each client sends 7 per second
# round-robin over its 3 rooms (2.3 per room), and resends a refused message
# after retry_after_ms with the same ref, so a refusal never changes a count.
SEND_INTERVAL_S = 1 / 7
TIMEOUT = 30.0
BUILD = build_dir()


def id_key(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def rooms_of(i: int) -> list[str]:
    return [f"room{(i + k) % N_ROOMS}" for k in range(ROOMS_PER_CLIENT)]


def require_built() -> None:
    missing = [p for p in (BUILD / "host" / "aurora-host", *(BUILD / "plugins" / f"{n}.so" for n in
               ("auth", "chat", "ratelimit", "ingest", "rooms"))) if not p.is_file()]
    if missing:
        pytest.fail(f"not built: {', '.join(map(str, missing))} (cmake --build {BUILD})"
                    + ("; the ingest plugin is its own issue: the topology needs it for the ingest workers"
                       if any(p.name == "ingest.so" for p in missing) else ""))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_built()
    work = tmp_path_factory.mktemp("deploy")
    started: list = []
    redis_srv = RedisServer.start()
    started.append(redis_srv)
    mongo_srv = FerretDbServer.start()
    started.append(mongo_srv)
    db = f"deploy_{uuid.uuid4().hex[:8]}"
    env = {  # what compose.yaml gives every Aurora container (.env -> AURORA_JWT_SECRET)
        "AURORA_REDIS_URL": redis_srv.url,
        "AURORA_MONGO_URL": mongo_srv.url(db),
        "AURORA_JWT_SECRET": os.urandom(32).hex(),
        "AURORA_PLUGIN_PATH": str(BUILD / "plugins"),
        "AURORA_LOG_LEVEL": "info",
    }
    hosts: dict[str, ProfileHost] = {}
    nginx = None
    try:
        for name, profile in (("users", "user-service"), ("chat-1", "chat-service"), ("chat-2", "chat-service"),
                              ("ingest-1", "ingest-worker"), ("ingest-2", "ingest-worker")):
            hosts[name] = ProfileHost.start(name, profile, work, env)
        for h in hosts.values():
            h.wait_ready()
        nginx = Nginx.start(work / "nginx", {"users": [hosts["users"].port],
                                             "chat": [hosts["chat-1"].port, hosts["chat-2"].port]})
        yield {"nginx": nginx, "hosts": hosts, "redis": redis_srv, "mongo": mongo_srv.url(db), "db": db,
               "work": work}
    except StartError as e:
        pytest.fail(str(e))
    finally:
        if nginx:
            nginx.stop()
        codes = {name: h.stop() for name, h in hosts.items() if h.running()}
        for s in reversed(started):
            s.stop()
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, f"hosts did not exit 0 on SIGTERM: {bad}; logs in {work}"


def post_json(port: int, path: str, body: dict, client_addr: str | None = None) -> tuple[int, dict | None]:
    headers = {"Content-Type": "application/json"}
    if client_addr:
        # nginx appends the peer (127.0.0.1, a trusted proxy in the profiles)
        # to what the client sent: the hosts then see client_addr, as they
        # would see distinct clients behind nginx.
        headers["X-Forwarded-For"] = client_addr
    resp = http_request(port, path, method="POST", headers=headers, body=json.dumps(body).encode(), timeout=30.0)
    return resp.status, (resp.json() if resp.body else None)


class Client:
    """One user's WebSocket through nginx; keeps every frame it receives."""

    def __init__(self, index: int, token: str, nginx_port: int):
        self.index = index
        self.token = token
        self.url = f"ws://127.0.0.1:{nginx_port}/ws"
        self.ws = None
        self.messages: list[dict] = []  # every live or resumed chat message, in arrival order
        self.fences: set[str] = set()   # ids of the test's fence messages (see fence())
        self.frames: list[dict] = []  # everything else
        self.acks: dict[str, asyncio.Future] = {}
        self.reader: asyncio.Task | None = None
        self.closed = asyncio.Event()
        self.snapshot = asyncio.Event()
        self.resumed: dict[str, dict] = {}

    async def open(self) -> None:
        self.closed.clear()
        self.snapshot.clear()
        self.ws = await connect(self.url, subprotocols=["Bearer." + self.token], max_size=None,
                                open_timeout=TIMEOUT, ping_interval=None)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                f = json.loads(raw)
                t = f.get("type")
                if t == "message":
                    self.messages.append(f)
                elif t in ("ack", "rate_limited", "error") and "ref" in f and f["ref"] in self.acks:
                    fut = self.acks.pop(f["ref"])
                    if not fut.done():
                        fut.set_result(f)
                else:
                    if t == "presence" and "users" in f:
                        self.snapshot.set()
                    if t == "resumed":
                        self.resumed[f["room"]] = f
                    self.frames.append(f)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for fut in self.acks.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self.acks.clear()

    async def request(self, frame: dict) -> dict:
        fut = asyncio.get_running_loop().create_future()
        self.acks[frame["ref"]] = fut
        await self.ws.send(json.dumps(frame))
        return await asyncio.wait_for(fut, TIMEOUT)

    async def wait_frame(self, pred, what: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for f in self.frames:
                if pred(f):
                    self.frames.remove(f)
                    return f
            await asyncio.sleep(0.01)  # polling the reader's list, bounded
        raise AssertionError(f"client {self.index}: no {what} within {TIMEOUT} s; last frames {self.frames[-5:]}")

    async def join(self, room: str) -> None:
        await self.ws.send(json.dumps({"type": "join", "room": room}))
        await self.wait_frame(lambda f: f.get("type") == "joined" and f.get("room") == room, f"joined {room}")

    async def send_message(self, room: str, text: str, ref: str) -> dict:
        """Sends until stored; a rate-limited send is repeated after its wait."""
        for _ in range(20):
            reply = await self.request({"type": "message", "room": room, "text": text, "ref": ref})
            if reply["type"] == "ack":
                return reply
            assert reply["type"] == "rate_limited", f"client {self.index}: {reply}"
            await asyncio.sleep(reply["retry_after_ms"] / 1000 + 0.01)
        raise AssertionError(f"client {self.index}: message {ref} refused 20 times")

    def ids(self, room: str) -> list[str]:
        return [m["id"] for m in self.chat() if m["room"] == room]

    def chat(self) -> list[dict]:
        """What the clients said: every message but the test's fences."""
        return [m for m in self.messages if m["id"] not in self.fences]

    def last_seen(self, room: str) -> str:
        """The newest id this client got in the room, fences included."""
        return max((m["id"] for m in self.messages if m["room"] == room), key=id_key)

    async def close(self) -> None:
        if self.ws:
            await self.ws.close()
        if self.reader:
            await asyncio.wait_for(self.reader, TIMEOUT)


def connections(host: ProfileHost) -> int:
    return int(host.metrics().total("aurora_connections"))


async def fence(clients: list, members: dict[str, set[int]], label: str) -> set[str]:
    """One message per room, sent after everything else: each replica's
    subscriber sees Pub/Sub in publish order and the host keeps per-connection
    order, so once every client has the fence of each of its rooms, anything
    sent before (a duplicate, a message of a foreign room) has arrived too.
    Clients count the fences out of what they saw (Client.chat); returns their ids."""
    ids = set()
    for room, who in members.items():
        sender = next(c for c in clients if c.index in who and not c.closed.is_set())
        ids.add((await sender.send_message(room, f"fence {label}", f"fence-{label}-{room}"))["id"])
    for c in clients:
        c.fences |= ids
        await wait_until(lambda c=c: sum(m["id"] in ids for m in c.messages) == len(rooms_of(c.index)),
                         f"client {c.index}: the {label} fences")
    return ids


async def wait_until(pred, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        await asyncio.sleep(0.05)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def test_compose_topology_through_nginx(stack):
    asyncio.run(scenario(stack))


async def scenario(stack) -> None:
    nginx: Nginx = stack["nginx"]
    hosts: dict[str, ProfileHost] = stack["hosts"]
    chat = [hosts["chat-1"], hosts["chat-2"]]
    port = nginx.port

    # The web client is served by nginx, with the host's security headers.
    page = http_request(port, "/")
    assert page.status == 200 and b"<html" in page.body.lower(), page.status
    assert "default-src 'self'" in page.headers.get("content-security-policy", "")
    assert http_request(port, "/health").status == 200  # a chat replica, through nginx
    assert http_request(port, "/metrics").status == 404  # not exposed at the edge

    # Register and log in through nginx (/api/auth/ -> users).
    names = [f"user{i}_{uuid.uuid4().hex[:6]}" for i in range(N_CLIENTS)]
    password = "correct horse battery"

    def register_and_login(i: int, name: str) -> str:
        # 20 registrations from one address would be over the auth plugin's
        # per-address limit (10 per 10 min): one client address per user.
        addr = f"198.51.100.{10 + i}"
        status, body = post_json(port, "/api/auth/register", {"username": name, "password": password}, addr)
        assert status == 200, (status, body)
        status, body = post_json(port, "/api/auth/login", {"username": name, "password": password}, addr)
        assert status == 200 and body and body.get("token"), (status, body)
        return body["token"]

    tokens = await asyncio.gather(*(asyncio.to_thread(register_and_login, i, n) for i, n in enumerate(names)))
    status, _ = post_json(port, "/api/auth/login", {"username": names[0], "password": "wrong password!"})
    assert status == 401

    # 20 clients, one after the other: least_conn spreads them over both replicas.
    clients = [Client(i, tokens[i], port) for i in range(N_CLIENTS)]
    for c in clients:
        await c.open()
        await asyncio.wait_for(c.snapshot.wait(), TIMEOUT)  # in `general`: fully connected
    per_replica = [connections(h) for h in chat]
    assert sum(per_replica) == N_CLIENTS and min(per_replica) > 0, f"aurora_connections per replica: {per_replica}"

    for c in clients:
        for room in rooms_of(c.index):
            await c.join(room)
    members = {f"room{r}": {c.index for c in clients if f"room{r}" in rooms_of(c.index)} for r in range(N_ROOMS)}

    # 2,000 messages: each client 100, round-robin over its 3 rooms.
    sent: dict[str, list[str]] = {r: [] for r in members}  # room -> acked ids

    async def sender(c: Client) -> None:
        start = time.monotonic()
        rooms = rooms_of(c.index)
        for k in range(MESSAGES_PER_CLIENT):
            await asyncio.sleep(max(0.0, start + k * SEND_INTERVAL_S - time.monotonic()))
            room = rooms[k % len(rooms)]
            ack = await c.send_message(room, f"{c.index}:{k}", f"c{c.index}-{k}")
            assert ack["room"] == room and not ack.get("duplicate"), ack
            sent[room].append(ack["id"])

    t0 = time.monotonic()
    await asyncio.gather(*(sender(c) for c in clients))
    total = sum(len(v) for v in sent.values())
    assert total == N_CLIENTS * MESSAGES_PER_CLIENT
    print(f"\n{total} messages sent and acked through nginx in {time.monotonic() - t0:.1f} s; "
          f"clients per replica {per_replica}")

    def expected(c: Client) -> int:
        return sum(len(sent[r]) for r in rooms_of(c.index))

    await wait_until(lambda: all(len(c.chat()) >= expected(c) for c in clients),
                     "every client to receive its rooms' messages")
    fences = await fence(clients, members, "after-2000")  # anything extra (a duplicate, a foreign room) is in by now
    for c in clients:
        got = {}
        for m in c.chat():
            assert m["room"] in rooms_of(c.index), f"client {c.index} got a message of {m['room']}"
            got.setdefault(m["room"], []).append(m["id"])
        for room in rooms_of(c.index):
            assert sorted(got.get(room, []), key=id_key) == sorted(sent[room], key=id_key), \
                f"client {c.index}, {room}: {len(got.get(room, []))} received, {len(sent[room])} sent"
            assert got[room] == sorted(got[room], key=id_key), f"client {c.index}, {room}: out of order"

    # MongoDB (FerretDB here) holds each message exactly once, written by the ingest workers.
    all_ids = {i for ids in sent.values() for i in ids}
    mongo = pymongo.MongoClient(stack["mongo"], serverSelectionTimeoutMS=5000)
    coll = mongo[stack["db"]]["messages"]
    r = redis_py.Redis.from_url(stack["redis"].url, decode_responses=True)

    def group_drained() -> bool:  # every entry stored and acked: no insert (nor duplicate) still to come
        g = next((g for g in r.xinfo_groups("chat:messages") if g["name"] == "mongo_workers"), None)
        return g is not None and g["lag"] == 0 and g["pending"] == 0

    await wait_until(group_drained, "the ingest workers to store and ack every entry")
    docs = list(coll.find({}, {"_id": 0, "streamId": 1, "roomId": 1}))
    stream_ids = [d["streamId"] for d in docs if d["streamId"] not in fences]
    assert len(stream_ids) == len(set(stream_ids)) == len(all_ids), \
        f"{len(stream_ids)} documents, {len(set(stream_ids))} distinct streamIds, {len(all_ids)} messages"
    assert set(stream_ids) == all_ids
    unique = [ix for ix in coll.list_indexes() if ix.get("key", {}).get("streamId") and ix.get("unique")]
    assert unique, "no unique index on streamId"
    consumers = r.xinfo_consumers("chat:messages", "mongo_workers")
    workers = [n for n in hosts if n.startswith("ingest")]
    # Consumer names are <hostname>-s<slot>-<n>, one slot per process on a
    # machine (docs/ingest.md): both worker processes joined the group.
    slots = {cn["name"].rsplit("-", 1)[0] for cn in consumers}
    assert len(slots) == len(workers), f"consumers {[cn['name'] for cn in consumers]}, workers {workers}"
    await wait_until(lambda: r.xpending("chat:messages", "mongo_workers")["pending"] == 0,
                     "no entry pending in the consumer group", 10.0)

    # Kill -9 one chat replica (the one with fewer clients: the shared-address
    # connection budget, docs/deployment.md). Its clients reconnect through
    # nginx, land on the survivor and resume every room from the last id seen.
    victim_i = 0 if per_replica[0] <= per_replica[1] else 1
    victim, survivor = chat[victim_i], chat[1 - victim_i]
    victim.kill()
    await wait_until(lambda: sum(c.closed.is_set() for c in clients) == per_replica[victim_i],
                     "the victim's clients to see their connections drop", 10.0)
    dropped = [c for c in clients if c.closed.is_set()]
    alive = [c for c in clients if not c.closed.is_set()]
    assert len(dropped) == per_replica[victim_i]

    # While they are away, the survivor's clients keep talking in every room.
    missed: dict[str, list[str]] = {r: [] for r in members}
    writers = {}
    for room, who in members.items():
        writers[room] = next(c for c in alive if c.index in who)
    for k in range(5):
        for room, c in writers.items():
            ack = await c.send_message(room, f"while away {k}", f"away-{room}-{k}")
            missed[room].append(ack["id"])

    for c in dropped:
        last_seen = {room: c.last_seen(room) for room in rooms_of(c.index)}
        await c.open()
        await asyncio.wait_for(c.snapshot.wait(), TIMEOUT)
        for room in rooms_of(c.index):
            await c.ws.send(json.dumps({"type": "resume", "room": room, "since": last_seen[room]}))
    await wait_until(lambda: all(len(c.resumed) == ROOMS_PER_CLIENT for c in dropped), "every resumed answer")
    assert connections(survivor) == N_CLIENTS, "not every client is on the surviving replica"

    # And after the resume, live traffic again.
    after: dict[str, list[str]] = {r: [] for r in members}
    for room, c in writers.items():
        ack = await c.send_message(room, "after resume", f"after-{room}")
        after[room].append(ack["id"])
    for c in clients:
        want = expected(c) + sum(len(missed[r]) + len(after[r]) for r in rooms_of(c.index))
        await wait_until(lambda c=c, want=want: len(c.chat()) >= want, f"client {c.index}: every message")
    await fence(clients, members, "after-resume")  # a duplicate would be in by now
    for c in clients:
        for room in rooms_of(c.index):
            ids = c.ids(room)
            want = sent[room] + missed[room] + after[room]
            assert len(ids) == len(set(ids)), f"client {c.index}, {room}: a message twice"
            assert sorted(ids, key=id_key) == sorted(want, key=id_key), \
                f"client {c.index}, {room}: {len(ids)} received, {len(want)} sent (gap or extra)"
        if c in dropped:
            for room in rooms_of(c.index):
                done = c.resumed[room]
                assert done["count"] == len(missed[room]) and done["complete"], done
    print(f"killed {victim.name} ({per_replica[victim_i]} clients): all reconnected to {survivor.name} "
          f"through nginx and resumed {sum(len(v) for v in missed.values())} missed messages without a gap")

    for c in clients:
        await c.close()
