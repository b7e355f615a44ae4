"""The shipped plugins driven through aurora.Plugin (no sockets), against
real Redis and FerretDB: auth, ratelimit, chat. Plus aurora.jwt against the
auth plugin's own verifier and issuer, and aurora.Host (embedded)."""

from __future__ import annotations

import uuid

import time

import pytest

import aurora
from aurora import client as aurora_client
from aurora import jwt as aurora_jwt
from aurora_py_support import built

SECRET = "aurora-python-tests-0123456789-abcdefghijklm"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def auth(redis_server, mongo_server):
    settings = {"jwt.secret": SECRET, "redis.url": redis_server.url, "mongo.url": mongo_server.url(uid("pyauth"))}
    with aurora.Plugin.load(built("auth"), {"redis_prefix": uid("a") + ":", "bcrypt_cost": 4},
                            settings=settings) as p:
        yield p


def test_auth_accepts_our_tokens_and_refuses_what_jwt_decode_refuses(auth):
    good = aurora_jwt.encode("u42", "alice", SECRET)
    a = auth.authenticate(good)
    assert (a.verdict, a.user_id, a.username) == ("accept", "u42", "alice")
    cases = {
        "expired": aurora_jwt.encode("u42", "alice", SECRET, ttl_s=-3600),
        "bad key": aurora_jwt.encode("u42", "alice", "another-secret-0123456789-abcdefghijkl"),
        "HS512": aurora_jwt.encode("u42", "alice", SECRET, algorithm="HS512"),
        "no user": aurora_jwt.encode("", "alice", SECRET),
        "garbage": "a.b",
    }
    for why, token in cases.items():
        assert auth.authenticate(token).verdict == "reject", why
        with pytest.raises(aurora_jwt.InvalidToken):
            aurora_jwt.decode(token, SECRET)
    # Within the leeway both accept; past it both refuse.
    late = aurora_jwt.encode("u", "n", SECRET, ttl_s=-10)
    assert auth.authenticate(late).verdict == "accept" and aurora_jwt.decode(late, SECRET)["userId"] == "u"


def test_auth_register_and_login_answered_from_its_worker_threads(auth):
    name = uid("bob")
    reg = auth.http("POST", "/api/auth/register", body={"username": name, "password": "correct horse 1"},
                    headers={"Content-Type": "application/json"})
    assert reg.wait(20.0) == 200, reg.body
    login = auth.http("POST", "/api/auth/login", body={"username": name, "password": "correct horse 1"},
                      headers={"Content-Type": "application/json"})
    assert login.wait(20.0) == 200, login.body
    claims = aurora_jwt.decode(login.json()["token"], SECRET)  # the plugin's token, our rules
    assert claims["username"] == name and claims["exp"] - claims["iat"] == 86400
    assert [e["thread"] for e in auth.events("http_reply")] != [0, 0], "replied off the service thread"
    bad = auth.http("POST", "/api/auth/login", body={"username": name, "password": "wrong horse 1"},
                    headers={"Content-Type": "application/json"})
    assert bad.wait(20.0) == 401


def test_ratelimit_pending_checks_resolved_on_the_hosts_loop(redis_server):
    with aurora.Plugin.load(built("ratelimit"), {"key_prefix": uid("rl"), "room_max": 3, "room_window_ms": 60000},
                            settings={"redis.url": redis_server.url}) as p:
        deadline = time.monotonic() + 10.0
        while not p.is_ready():  # connected, script loaded (the recording host runs its loop while waiting)
            assert time.monotonic() < deadline, p.logs()
            p.wait_for("nothing", timeout=0.05)
        c = p.connect(uid("carol"))
        verdicts, replies = [], []
        for i in range(5):
            m = p.message(c, {"type": "message", "room": "general", "text": f"m{i}"})
            verdicts.append(m.wait(5.0))
            replies.append(m.reply)
        assert verdicts == ["continue"] * 3 + ["reply"] * 2
        assert replies[3]["type"] == "rate_limited" and replies[3]["limit"] == "room"
        # Checked on the host's loop (ABI 1.2): resumed on the service thread, no plugin thread.
        assert [e["thread"] for e in p.events("resume")] == [0] * 5


def test_chat_joins_sends_and_fans_out_through_redis(redis_server):
    stream = uid("s")
    with aurora.Plugin.load(built("chat"), {"stream": stream}, settings={"redis.url": redis_server.url}) as p:
        # Chat's Redis connections run on the host's loop (ABI 1.2): the
        # recording host runs it while the test waits. Ready = subscribed.
        deadline = time.monotonic() + 10.0
        while not p.is_ready():
            assert time.monotonic() < deadline, p.logs()
            p.wait_for("nothing", timeout=0.05)  # runs the plugin's loop meanwhile (bounded)
        alice, bob = p.connect(uid("alice"), "alice"), p.connect(uid("bob"), "bob")
        # The default room is joined at connect, through the fan-out's sequencer.
        assert p.wait_for("join", count=2, timeout=10.0), p.logs()
        assert p.members("general") == {alice, bob}
        m = p.message(alice, {"type": "message", "text": "hello", "ref": "r1"})
        assert m.wait(10.0) in ("drop", "reply")
        # Presence events are broadcast too (in any order with the message):
        # wait for the message itself.
        deadline = time.monotonic() + 10.0
        live = []
        while not live and time.monotonic() < deadline:
            p.wait_for("broadcast", count=len(p.events("broadcast")) + 1, timeout=0.5)
            live = [b for b in p.broadcasts("general") if b.get("type") == "message"]
        assert live and live[0]["text"] == "hello" and live[0]["user"] == "alice"
        sent = [f for f in p.sent(alice) if f.get("type") == "ack"] or [m.reply]
        assert sent[0]["ref"] == "r1"


def test_embedded_host_serves_echo_with_the_gil_released():
    cfg = {"listen": {"host": "127.0.0.1", "port": 0}, "allow_anonymous": True,
           "plugins": [{"name": "echo", "path": built("echo")}]}
    with aurora.Host(cfg) as host:
        assert host.port > 0 and host.ready()
        with aurora_client.connect(host.ws_url) as c:
            c.send_frame({"type": "echo", "text": "through the host"})
            assert c.receive("echo")["text"] == "through the host"
        m = host.metrics()
        assert any(k.startswith("aurora_") for k in m)
    assert host.stop() == 0


def test_embedded_host_start_error_carries_the_exit_code():
    with pytest.raises(aurora.HostStartError) as err:
        aurora.Host({"plugins": [{"name": "x", "path": built("wrong_major")}]})
    assert err.value.exit_code == 2 and "built for ABI 2.0" in str(err.value)


def test_jwt_round_trip_and_rules():
    t = aurora_jwt.encode("id1", "name1", SECRET, now=1000, ttl_s=60)
    assert aurora_jwt.decode(t, SECRET, now=1000) == {"userId": "id1", "username": "name1", "iat": 1000,
                                                      "exp": 1060}
    with pytest.raises(aurora_jwt.InvalidToken, match="token expired"):
        aurora_jwt.decode(t, SECRET, now=1090)
    assert aurora_jwt.decode(t, SECRET, now=1089)  # leeway 30 s, as the plugin
    with pytest.raises(aurora_jwt.InvalidToken, match="unexpected algorithm"):
        aurora_jwt.decode(aurora_jwt.encode("a", "b", SECRET, algorithm="HS384"), SECRET)
    none_alg = t.split(".")[0].replace(t.split(".")[0], "eyJhbGciOiJub25lIn0") + "." + t.split(".")[1] + "."
    with pytest.raises(aurora_jwt.InvalidToken):
        aurora_jwt.decode(none_alg, SECRET)
