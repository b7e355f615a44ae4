"""The server API (docs/server-api.md) on two replicas and a real Redis:
API keys and scopes, publish through the send path (stored, live on every
replica, resumable, deduplicated), broadcast, disconnect and ban on every
replica, presence, online state, server info, and what a hostile caller
gets: every method with and without a body on every route, bad keys, bad
bodies, a rate that is exceeded. Identity comes from the probe fixture
plugin (?user=NAME)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import redis as redis_py
from websockets.exceptions import ConnectionClosed

from aurora_host import AuroraHost, HostStartError, http_request
from chat_support import HOST, TIMEOUT, Client, chat_config, require, wait_ready
from waiting import wait_until

BASE = "/api/server/"
FULL = secrets.token_hex(24)      # publish, moderate, read
READER = secrets.token_hex(24)    # read only
SLOW = secrets.token_hex(24)      # read, 2 requests per second
KEYS = {"keys": [{"name": "backend", "key": FULL, "scopes": ["publish", "moderate", "read"], "rate_per_s": 1000},
                 {"name": "dashboard", "key": READER, "scopes": ["read"], "rate_per_s": 1000},
                 {"name": "slow", "key": SLOW, "scopes": ["read"], "rate_per_s": 2}]}
SYSTEM_ID = "000000000000000000000000"


def start(tmp: Path, redis_url: str, env: dict | None = None, **chat) -> AuroraHost:
    cfg = chat_config(redis_url, server_api=True, **chat)
    h = AuroraHost.start(Path(require(HOST)), tmp, cfg, env={"AURORA_SERVER_API_KEYS": json.dumps(KEYS), **(env or {})})
    wait_ready(h)
    return h


@pytest.fixture(scope="module")
def replicas(redis_srv, tmp_path_factory):
    a = start(tmp_path_factory.mktemp("replica-a"), redis_srv.url)
    b = start(tmp_path_factory.mktemp("replica-b"), redis_srv.url)
    yield a, b
    for h in (a, b):
        assert h.stop() == (0, False), h.stderr_tail()
        # No key in any log line, at any level.
        text = h.stderr_path.read_text()
        assert FULL not in text and READER not in text and SLOW not in text


@pytest.fixture
def r(redis_srv):
    client = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
    yield client
    client.close()


def call(host: AuroraHost, path: str, body=None, key: str | None = FULL, method: str | None = None,
         headers: dict | None = None):
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    resp = http_request(host.port, BASE + path, method or ("GET" if body is None else "POST"), headers=h, body=data)
    try:
        payload = json.loads(resp.body) if resp.body else None
    except ValueError:
        payload = resp.body
    return resp.status, payload, resp.headers


def closed_with(c: Client, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Reads until the server closes: its close code and reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c.ws.recv(timeout=0.25)
        except TimeoutError:
            continue
        except ConnectionClosed as e:
            assert e.rcvd is not None, "closed without a close frame"
            return e.rcvd.code, e.rcvd.reason
    pytest.fail("the connection was not closed")


def user_name() -> str:
    return "u" + secrets.token_hex(4)


# ---- keys ----

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic " + FULL}, {"X-API-Key": FULL},
                                     {"Authorization": "Bearer " + FULL + "x"}])
def test_a_missing_or_wrong_key_is_401_without_a_hint(replicas, headers):
    a, _ = replicas
    for path in ("info", "publish", "nowhere"):
        status, body, hdrs = call(a, path, key=None, headers=headers, method="GET")
        assert status == 401 and body["code"] == "unauthorized", (path, body)
        assert hdrs["www-authenticate"].startswith("Bearer")
        # The same answer whatever was wrong: nothing says which key was close.
        assert body == {"code": "unauthorized", "error": "a valid API key is needed (Authorization: Bearer <key>)"}


def test_a_key_outside_its_scopes_is_403(replicas, r):
    a, _ = replicas
    before = r.xlen("chat:messages") if r.exists("chat:messages") else 0
    for path, body in (("publish", {"room": "general", "text": "hi"}), ("broadcast", {"rooms": ["general"], "text": "x"}),
                       ("disconnect", {"user_id": "x"}), ("ban", {"user_id": "x", "duration_s": 5}),
                       ("unban", {"user_id": "x"})):
        status, answer, _ = call(a, path, body, key=READER)
        assert status == 403 and answer["code"] == "forbidden", (path, answer)
    assert (r.xlen("chat:messages") if r.exists("chat:messages") else 0) == before


def test_a_key_over_its_rate_gets_429_with_retry_after(replicas):
    a, _ = replicas
    statuses = []
    for _ in range(6):
        status, body, hdrs = call(a, "info", key=SLOW)
        statuses.append(status)
        if status == 429:
            assert body["code"] == "rate_limited" and int(hdrs["retry-after"]) >= 1
    assert statuses[:2] == [200, 200] and 429 in statuses, statuses
    # Another key is not slowed by it.
    assert call(a, "info", key=READER)[0] == 200


# ---- publish ----

def test_publish_is_stored_live_on_both_replicas_and_resumable(replicas, r):
    a, b = replicas
    room = "srv-" + secrets.token_hex(3)
    ca, cb = Client(a, user_name()), Client(b, user_name())
    try:
        for c in (ca, cb):
            c.settled()
            c.send(type="join", room=room, ref="j")
            c.wait(lambda f: f.get("type") == "joined", "joined")
        status, body, _ = call(a, "publish", {"room": room, "text": "from the backend"})
        assert status == 200 and body["room"] == room and body["duplicate"] is False
        for c in (ca, cb):
            m = c.messages(1, room)[0]
            assert (m["id"], m["text"], m["userId"], m["user"]) == (body["id"], "from the backend", SYSTEM_ID, "system")
        entry = r.xrange("chat:messages", body["id"], body["id"])
        assert entry and entry[0][1]["roomId"] == room and entry[0][1]["userId"] == SYSTEM_ID
        # On behalf of a user, with a ref: a retry is the same message.
        sent = {"room": room, "text": "as alice", "user_id": "64b000000000000000000001", "username": "alice", "ref": "r-1"}
        first = call(b, "publish", sent)[1]
        again = call(a, "publish", sent)[1]
        assert again["id"] == first["id"] and again["duplicate"] is True and first["duplicate"] is False
        m = ca.messages(1, room)[0]
        assert (m["userId"], m["user"], m["ref"]) == ("64b000000000000000000001", "alice", "r-1")
        assert len(r.xrange("chat:messages", first["id"], first["id"])) == 1
    finally:
        ca.close()
        cb.close()
    # A client that was away catches up with resume.
    late = Client(b, user_name())
    try:
        late.settled()
        late.send(type="resume", room=room, since="0-0", ref="res")
        got = late.messages(2, room)
        assert [m["text"] for m in got] == ["from the backend", "as alice"]
        late.wait(lambda f: f.get("type") == "resumed" and f.get("count") == 2, "resumed")
    finally:
        late.close()


def test_a_published_message_is_in_mongodb_once_through_ingest(redis_srv, mongo_server, tmp_path):
    """The server API's messages take the client's path all the way: ingest
    stores each once, a retried ref included, with the system user's
    ObjectId or the user it was published for."""
    import pymongo
    from bson import ObjectId

    db = "srvapi_" + secrets.token_hex(4)
    stream = "srvapi:" + secrets.token_hex(3)
    cfg = chat_config(redis_srv.url, server_api=True, stream=stream)
    cfg["mongo"] = {"url": mongo_server.url(db)}
    cfg["plugins"].append({"name": "ingest", "path": require(HOST.parent.parent / "plugins" / "ingest.so"),
                           "config": {"stream": stream, "history": False, "workers": 1}})
    h = AuroraHost.start(Path(require(HOST)), tmp_path, cfg, env={"AURORA_SERVER_API_KEYS": json.dumps(KEYS)})
    coll = pymongo.MongoClient(mongo_server.url(db), serverSelectionTimeoutMS=5000)[db]["messages"]
    try:
        wait_ready(h)
        first = call(h, "publish", {"room": "general", "text": "stored once", "ref": "once-1"})[1]
        again = call(h, "publish", {"room": "general", "text": "stored once", "ref": "once-1"})[1]
        assert again["id"] == first["id"] and again["duplicate"] is True
        user = "64b0000000000000000000aa"
        theirs = call(h, "publish", {"room": "general", "text": "for a user", "user_id": user, "username": "ada"})[1]
        wait_until(lambda: coll.count_documents({"roomId": "general"}) >= 2, "both messages stored by ingest")
        docs = {d["streamId"]: d for d in coll.find({"roomId": "general"})}
        assert set(docs) == {first["id"], theirs["id"]}  # the retried ref added nothing
        assert docs[first["id"]]["userId"] == ObjectId(SYSTEM_ID) and docs[first["id"]]["username"] == "system"
        assert docs[theirs["id"]]["userId"] == ObjectId(user) and docs[theirs["id"]]["text"] == "for a user"
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


def test_a_backends_refs_never_collide_with_a_clients(replicas, r):
    """A server API ref is remembered per key and room: the same text the
    user's own client sends with the same ref is a message of its own."""
    a, _ = replicas
    user = user_name()
    c = Client(a, user)
    try:
        c.settled()
        c.send(type="message", text="mine", ref="1042")
        mine = c.wait(lambda f: f.get("type") == "ack" and f.get("ref") == "1042", "the client's ack")
        theirs = call(a, "publish", {"room": "general", "text": "theirs", "user_id": user, "ref": "1042"})[1]
        assert theirs["duplicate"] is False and theirs["id"] != mine["id"]
        c.send(type="message", text="mine again", ref="1042")
        again = c.wait(lambda f: f.get("type") == "ack" and f.get("duplicate"), "the client's retry")
        assert again["id"] == mine["id"]  # the client's own dedup still works
        # Per room: the same ref in another room is another message.
        other = call(a, "publish", {"room": "elsewhere", "text": "theirs", "user_id": user, "ref": "1042"})[1]
        assert other["duplicate"] is False
    finally:
        c.close()


def test_a_backend_that_closes_right_after_sending_loses_nothing(replicas, r):
    """The hostile or hasty caller: each request sent whole, the socket
    closed before the answer. With a plain close (FIN) every publish is
    stored once all the same and the ban takes effect. With an abortive
    close (RST) the kernel may drop what the host had not read yet: such a
    request is stored once or not at all, never in part, and sending it
    again with its ref makes it exactly once. The hosts serve on."""
    import socket
    import struct

    a, b = replicas
    refs = [f"gone-{secrets.token_hex(4)}" for _ in range(40)]
    victim = user_name()
    requests = [("publish", {"room": "general", "text": f"sent and gone {i}", "ref": ref}) for i, ref in enumerate(refs)]
    requests.append(("ban", {"user_id": victim, "duration_s": 60}))  # index 40: a plain close
    aborted = set()
    for i, (path, body) in enumerate(requests):
        data = json.dumps(body).encode()
        head = (f"POST {BASE}{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {FULL}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", (a if i % 2 else b).port), timeout=5) as s:
            if i % 3 == 0:  # an abortive close: RST instead of FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                aborted.add(i)
            s.sendall(head + data)

    def stored() -> list[str]:
        return [f["ref"] for _, f in r.xrange("chat:messages") if f.get("ref") in refs]

    fin = {refs[i] for i in range(len(refs)) if i not in aborted}
    wait_until(lambda: fin <= set(stored()), "every publish closed with FIN stored")
    wait_until(lambda: r.zscore("chat:bans", victim) is not None, "the ban stored")
    assert closed_with(Client(a, victim)) == (4003, "banned")
    # The caller that never got its answers sends them all again: each once.
    for i, ref in enumerate(refs):
        status, answer, _ = call(a, "publish", {"room": "general", "text": f"sent and gone {i}", "ref": ref})
        assert status == 200 and (answer["duplicate"] or i in aborted), (i, answer)
    got = stored()
    assert sorted(got) == sorted(refs)  # every one, each exactly once
    assert call(a, "unban", {"user_id": victim})[0] == 200
    for h in (a, b):
        assert h.get("/health").status == 200 and h.running()


BAD_PUBLISH = [
    (b"", "bad_json"), (b"{", "bad_json"), (b"[]", "bad_json"), (b'"text"', "bad_json"),
    (b'{"room":"general","text":"a","text":"b"}', "bad_json"),
    ({"text": "no room"}, "bad_room"), ({"room": "", "text": "x"}, "bad_room"),
    ({"room": "bad room", "text": "x"}, "bad_room"), ({"room": "r" * 65, "text": "x"}, "bad_room"),
    ({"room": 7, "text": "x"}, "bad_room"), ({"room": "general"}, "bad_field"),
    ({"room": "general", "text": 5}, "bad_field"), ({"room": "general", "text": ""}, "empty"),
    ({"room": "general", "text": "x" * 4001}, "too_long"), ({"room": "general", "text": "a\u0000b"}, "bad_json"),
    ({"room": "general", "text": "x", "extra": 1}, "bad_field"),
    ({"room": "general", "text": "x", "user_id": 12}, "bad_field"),
    ({"room": "general", "text": "x", "user_id": "anon-1"}, "bad_user"),
    ({"room": "general", "text": "x", "user_id": "a\nb"}, "bad_user"),
    ({"room": "general", "text": "x", "user_id": "u" * 129}, "bad_user"),
    ({"room": "general", "text": "x", "username": "no id"}, "bad_field"),
    ({"room": "general", "text": "x", "user_id": "u1", "username": "n" * 129}, "bad_field"),
    ({"room": "general", "text": "x", "ref": ""}, "bad_field"), ({"room": "general", "text": "x", "ref": 3}, "bad_field"),
    ({"room": "general", "text": "x", "user_id": "u1", "username": "a\u0085b"}, "bad_field"),  # C1 control
    ({"room": "general", "text": "x", "ref": "r" * 129}, "bad_field"),
]


@pytest.mark.parametrize("body,code", BAD_PUBLISH)
def test_a_bad_publish_is_refused_with_its_code_and_stores_nothing(replicas, r, body, code):
    a, _ = replicas
    before = r.xlen("chat:messages") if r.exists("chat:messages") else 0
    status, answer, _ = call(a, "publish", body)
    assert status == 400 and answer["code"] == code, answer
    assert (r.xlen("chat:messages") if r.exists("chat:messages") else 0) == before


def test_broadcast_stores_one_message_per_room_in_order_asked(replicas, r):
    a, b = replicas
    rooms = ["bc-" + secrets.token_hex(3) for _ in range(3)]
    c = Client(b, user_name())
    try:
        c.settled()
        for room in rooms[:2]:
            c.send(type="join", room=room, ref="j-" + room)
            c.wait(lambda f, room=room: f.get("type") == "joined" and f.get("room") == room, "joined")
        status, body, _ = call(a, "broadcast", {"rooms": rooms, "text": "maintenance at noon", "ref": "m-1"})
        assert status == 200 and [x["room"] for x in body["results"]] == rooms
        ids = [x["id"] for x in body["results"]]
        assert len(set(ids)) == 3
        for room in rooms[:2]:
            assert c.messages(1, room)[0]["text"] == "maintenance at noon"
        again = call(a, "broadcast", {"rooms": rooms, "text": "maintenance at noon", "ref": "m-1"})[1]
        assert [x["id"] for x in again["results"]] == ids and all(x["duplicate"] for x in again["results"])
    finally:
        c.close()
    for body in ({"rooms": [], "text": "x"}, {"rooms": "general", "text": "x"}, {"rooms": ["a", "a"], "text": "x"},
                 {"rooms": [f"r{i}" for i in range(101)], "text": "x"}, {"rooms": ["ok", "bad room"], "text": "x"}):
        status, answer, _ = call(a, "broadcast", body)
        assert status == 400 and answer["code"] in ("bad_field", "bad_room"), answer


# ---- disconnect and ban, on every replica ----

def test_disconnect_closes_the_users_connections_on_every_replica(replicas):
    a, b = replicas
    victim, bystander = user_name(), user_name()
    on_a, on_b, other = Client(a, victim), Client(b, victim), Client(b, bystander)
    try:
        for c in (on_a, on_b, other):
            c.settled()
        t0 = time.monotonic()
        status, body, _ = call(a, "disconnect", {"user_id": victim, "reason": "password changed"})
        assert status == 200 and body["replicas"] == 2  # the two chat replicas, nothing else
        assert closed_with(on_a) == (4001, "password changed")
        assert closed_with(on_b) == (4001, "password changed")
        assert time.monotonic() - t0 < 1.0  # on both replicas within 1 s
        other.send(type="presence", ref="still")
        other.wait(lambda f: f.get("ref") == "still", "the bystander is still served")
        # It may connect again: a disconnect is not a ban.
        back = Client(b, victim)
        back.settled()
        back.close()
    finally:
        for c in (on_a, on_b, other):
            c.close()


def test_ban_closes_refuses_everywhere_and_unban_lifts_it(replicas, redis_srv, tmp_path):
    a, b = replicas
    victim = user_name()
    on_a, on_b = Client(a, victim), Client(b, victim)
    for c in (on_a, on_b):
        c.settled()
    t0 = time.monotonic()
    status, body, _ = call(b, "ban", {"user_id": victim, "duration_s": 600, "reason": "spam"})
    assert status == 200 and body["until_ms"] > time.time() * 1000
    assert closed_with(on_a) == (4003, "banned: spam")
    assert closed_with(on_b) == (4003, "banned: spam")
    assert time.monotonic() - t0 < 1.0  # on both replicas within 1 s
    for h in (a, b):  # refused at connect, before joining anything
        again = Client(h, victim)
        assert closed_with(again) == (4003, "banned")
    # A replica started after the ban knows it (loaded at subscription).
    c = start(tmp_path / "late", redis_srv.url)
    try:
        assert closed_with(Client(c, victim)) == (4003, "banned")
        status, body, _ = call(a, "unban", {"user_id": victim})
        assert status == 200
        for h in (a, b, c):
            ok = Client(h, victim)
            ok.settled()
            ok.close()
    finally:
        assert c.stop() == (0, False), c.stderr_tail()


def test_a_ban_ends_by_itself(replicas):
    a, b = replicas
    victim = user_name()
    assert call(a, "ban", {"user_id": victim, "duration_s": 1})[0] == 200
    assert closed_with(Client(b, victim)) == (4003, "banned")
    def admitted() -> bool:
        c = Client(b, victim)
        try:
            c.settled()
            return True
        except (ConnectionClosed, AssertionError):
            return False
        finally:
            c.close()

    wait_until(admitted, "the victim admitted once the ban ended", timeout=5, interval=0.2)


def test_a_long_reason_arrives_whole_before_a_close_that_carries_what_fits(replicas):
    a, _ = replicas
    victim = user_name()
    c = Client(a, victim)
    c.settled()
    reason = "é" * 60 + "🙂" * 40  # 100 characters, 280 bytes: more than a close frame holds
    assert call(a, "disconnect", {"user_id": victim, "reason": reason})[0] == 200
    err = c.wait(lambda f: f.get("type") == "error", "the error frame before the close")
    assert (err["code"], err["message"]) == ("disconnected", reason)
    code, cut = closed_with(c)
    assert code == 4001 and reason.startswith(cut) and len(cut.encode()) <= 123 and len(cut.encode()) >= 120


@pytest.mark.parametrize("path,body", [
    ("disconnect", {}), ("disconnect", {"user_id": ""}), ("disconnect", {"user_id": "x", "reason": "r" * 101}),
    ("disconnect", {"user_id": "x", "reason": "a\u0000b"}), ("disconnect", {"user_id": "x", "other": 1}),
    ("ban", {"user_id": "x"}), ("ban", {"user_id": "x", "duration_s": 0}), ("ban", {"user_id": "x", "duration_s": 1.5}),
    ("ban", {"user_id": "x", "duration_s": "60"}), ("ban", {"user_id": "x", "duration_s": 10 ** 12}),
    ("ban", {"user_id": "anon-x", "duration_s": 60}), ("unban", {"user_id": 5}), ("unban", {"user_id": "x", "reason": "r"}),
])
def test_bad_moderation_requests_are_400_and_change_nothing(replicas, r, path, body):
    a, _ = replicas
    before = r.zcard("chat:bans")
    status, answer, _ = call(a, path, body)
    assert status == 400 and answer["code"] in ("bad_field", "bad_user", "bad_json"), answer
    assert r.zcard("chat:bans") == before


# ---- presence, users, info ----

def test_presence_online_state_and_info_see_every_replica(replicas):
    a, b = replicas
    room = "pr-" + secrets.token_hex(3)
    alice, bob = user_name(), user_name()
    ca, cb = Client(a, alice), Client(b, bob)
    try:
        for c in (ca, cb):
            c.settled()
            c.send(type="join", room=room, ref="j")
            c.wait(lambda f: f.get("type") == "joined", "joined")
        # The join's presence entry is written as the join takes effect.
        body = wait_until(lambda: (b := call(a, f"rooms/{room}/presence", key=READER)[1])["connections"] == 2 and b,
                          "both connections in the room's presence")
        assert {u["userId"] for u in body["users"]} == {alice, bob}
        status, body, _ = call(b, f"users/{alice}", key=READER)
        assert status == 200 and body == {"user_id": alice, "online": True, "connections": 1}
        # Each replica writes its line every presence_refresh_s (1 s here).
        def both_lines() -> dict | None:
            info = call(a, "info", key=READER)[1]
            return info if len([x for x in info["replicas"] if x["connections"] >= 1]) >= 2 else None

        body = wait_until(both_lines, "both replicas' lines in info")
        assert body["connections"] >= 2 and body["replica"] in {x["id"] for x in body["replicas"]}
    finally:
        ca.close()
        cb.close()
    wait_until(lambda: not call(a, f"users/{alice}", key=READER)[1]["online"], "alice offline after her close")
    assert call(a, "users/nobody-" + secrets.token_hex(3), key=READER)[1]["connections"] == 0
    assert call(a, "users/a%2Fb%7Cc", key=READER)[1]["user_id"] == "a/b|c"
    assert call(a, "users/50%25", key=READER)[1]["user_id"] == "50%"  # decoded once, by the host
    head = http_request(a.port, BASE + "info", "HEAD", headers={"Authorization": f"Bearer {READER}"})
    assert head.status == 200 and head.body == b""  # HEAD is GET without the body
    lower = http_request(a.port, BASE + "info", headers={"Authorization": f"bearer {READER}"})
    assert lower.status == 200  # the scheme's name is case-insensitive
    for path, code in (("rooms/bad room/presence", "bad_room"), ("rooms/general/other", "not_found"),
                       ("rooms/general", "not_found")):
        status, body, _ = call(a, path.replace(" ", "%20"), key=READER)
        assert status in (400, 404) and body.get("code") == code, (path, status, body)
    assert call(a, "users/%00", key=READER)[0] == 400  # the host's own answer: no NUL in a target
    assert call(a, "users/%zz", key=READER)[0] == 403  # libwebsockets' own answer to a bad escape


# ---- every method, with and without a body, on every route ----

ROUTES = ["publish", "broadcast", "disconnect", "ban", "unban", "info", "users/x", "rooms/general/presence", "",
          "nowhere", "publish/extra"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("with_body", [False, True])
def test_every_method_on_every_route_gets_a_clear_answer(replicas, r, method, with_body):
    a, _ = replicas
    before = r.xlen("chat:messages") if r.exists("chat:messages") else 0
    for path in ROUTES:
        body = b'{"user_id":"x","room":"general"}' if with_body else None
        for key in (None, FULL):
            h = {"Authorization": f"Bearer {key}"} if key else {}
            resp = http_request(a.port, BASE + path, method, headers=h, body=body)
            assert resp.status < 500, (method, path, resp.status, resp.body)
            if key is None and resp.status != 404 and resp.status != 405:
                assert resp.status == 401, (method, path, resp.status)
            if method != "HEAD" and resp.status >= 400:
                assert "error" in json.loads(resp.body), (method, path, resp.body)  # the host's or the API's
    assert (r.xlen("chat:messages") if r.exists("chat:messages") else 0) == before
    assert a.get("/health").status == 200


def test_the_openapi_document_is_served(replicas):
    a, _ = replicas
    resp = a.get("/api/openapi.yaml")
    assert resp.status == 200 and resp.headers["content-type"].startswith("application/yaml")
    assert resp.body == (Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml").read_bytes()


# ---- configuration ----

@pytest.mark.parametrize("keys,why", [
    (None, "server_api needs keys"),
    ("not json", "expected a JSON object"),
    ({"keys": []}, "no keys"),
    ({"keys": [{"name": "a", "key": "short-secret-value", "scopes": ["read"]}]}, "must be 32-512 printable"),
    ({"keys": [{"name": "a", "key": "k" * 40, "scopes": []}]}, "must name at least one of"),
    ({"keys": [{"name": "a", "key": "k" * 40, "scopes": ["admin"]}]}, "scopes are"),
    ({"keys": [{"name": "a", "key": "k" * 40, "scopes": ["read"]}, {"name": "b", "key": "k" * 40, "scopes": ["read"]}]},
     "the same key as"),
    ({"keys": [{"name": "A!", "key": "k" * 40, "scopes": ["read"]}]}, "must be 1-64 characters of a-z"),
    ({"keys": [{"name": "a", "key": "k" * 40, "scopes": ["read"], "rate_per_s": 0}]}, "rate_per_s must be"),
    ({"keys": [{"name": "a", "key": "k" * 40, "scopes": ["read"], "extra": 1}]}, "unknown field"),
])
def test_bad_keys_are_refused_at_start_without_quoting_a_key(redis_srv, tmp_path, keys, why):
    env = {} if keys is None else {"AURORA_SERVER_API_KEYS": keys if isinstance(keys, str) else json.dumps(keys)}
    cfg = chat_config(redis_srv.url, server_api=True)
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, cfg, env)
    text = str(err.value)
    assert "exited with code 2" in text and why in text, text[-2000:]
    assert "k" * 40 not in text and "short-secret-value" not in text


def test_keys_from_a_file_and_not_from_two_places(redis_srv, tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(KEYS))
    cfg = chat_config(redis_srv.url, server_api=True, server_api_keys_file=str(path), server_api_path="/internal/chat/")
    h = AuroraHost.start(Path(require(HOST)), tmp_path / "ok", cfg, env={})
    try:
        wait_ready(h)
        assert http_request(h.port, "/internal/chat/info", headers={"Authorization": f"Bearer {READER}"}).status == 200
        assert http_request(h.port, "/api/server/info", headers={"Authorization": f"Bearer {READER}"}).status == 404
    finally:
        assert h.stop() == (0, False)
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path / "twice", cfg, {"AURORA_SERVER_API_KEYS": json.dumps(KEYS)})
    assert "given twice" in str(err.value)
