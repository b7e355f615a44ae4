"""The ratelimit plugin through real aurora-host processes and a real Redis.

Two host replicas (A and B) share the session's redis-server, so every
budget below is the one the cluster enforces. Behind ratelimit sits
ok_fixture.so, which answers every frame it receives with {"type":"ok"}:
an "ok" means the message was delivered past the limiter, a
"rate_limited" that it was refused.

Waiting: conditions are polled against deadlines; the only sleeps honour a
retry_after_ms (that is the behaviour under test) or place messages at
chosen points of a window (the boundary case).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import websockets
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import RedisServer  # noqa: E402

BUILD = build_dir()
HOST = BUILD / "host" / "aurora-host"
RATELIMIT = BUILD / "plugins" / "ratelimit.so"
OK_FIXTURE = BUILD / "tests" / "plugins" / "ratelimit" / "ok_fixture.so"

WINDOW_S = 1.0  # room_window_ms / user_window_ms of the shared replicas
POLL_S = 0.05


def require(path: Path) -> str:
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first "
                    f"(cmake --build {BUILD} --target aurora_plugin_ratelimit aurora_test_ratelimit_ok)")
    return str(path)


def host_config(redis_url: str, **ratelimit) -> dict:
    return {
        "log": {"level": "info", "format": "json"},
        "allow_anonymous": True,
        "redis": {"url": redis_url},
        "plugins": [
            {"name": "ratelimit", "path": require(RATELIMIT), "config": ratelimit},
            {"name": "ok_fixture", "path": require(OK_FIXTURE)},
        ],
    }


def start_host(tmp_path_factory, name: str, redis_url: str, **ratelimit) -> AuroraHost:
    return AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp(name), host_config(redis_url, **ratelimit))


def stop_host(h: AuroraHost) -> None:
    code, killed = h.stop()
    assert (code, killed) == (0, False), h.stderr_tail()


# The shared replicas: per room 3/s (the seed's limit), per user 5/s, control
# 3/s per connection, a connection closed after more than 8 refusals in 10 s.
# The connection-attempt limit is off here (every test connects from
# 127.0.0.1); it has its own host below.
SHARED = dict(message_types=["message"], control_types=["typing", "presence", "resume"],
              room_max=3, room_window_ms=1000, user_max=5, user_window_ms=1000,
              control_max=3, control_window_ms=1000, connect_max=0, abuse_max=8, abuse_window_ms=10000,
              redis_timeout_ms=500)


@pytest.fixture(scope="module")
def replicas(redis_server, tmp_path_factory):
    a = start_host(tmp_path_factory, "replica-a", redis_server.url, **SHARED)
    try:
        b = start_host(tmp_path_factory, "replica-b", redis_server.url, **SHARED)
    except Exception:
        stop_host(a)
        raise
    yield a, b
    stop_host(b)
    stop_host(a)


@pytest.fixture
def user() -> str:
    return "u" + uuid.uuid4().hex[:12]  # a fresh budget for every test


def ws(host: AuroraHost, user: str | None = None):
    query = f"/?user={user}" if user else "/"
    return connect(host.ws_url + query, open_timeout=5, close_timeout=2)


def recv(c, timeout: float = 5.0) -> dict:
    return json.loads(c.recv(timeout=timeout))


def send(c, **frame) -> None:
    c.send(json.dumps(frame))


def burst(c, n: int, **frame) -> list[dict]:
    """Sends n frames back to back (ref 0..n-1), then reads the n replies."""
    for i in range(n):
        send(c, ref=i, **frame)
    return [recv(c) for _ in range(n)]


def kinds(replies: list[dict]) -> list[str]:
    return [r["type"] for r in replies]


def poll(condition, deadline_s: float, what: str):
    deadline = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s} s: {what}")
        time.sleep(POLL_S)


def until_delivered(c, deadline_s: float, **frame) -> dict:
    """Sends `frame` until it is delivered, honouring each retry_after_ms."""
    deadline = time.monotonic() + deadline_s
    while True:
        send(c, **frame)
        reply = recv(c)
        if reply["type"] != "rate_limited":
            return reply
        assert time.monotonic() < deadline, f"still rate_limited after {deadline_s} s: {reply}"
        time.sleep(reply["retry_after_ms"] / 1000)


def delivered(host: AuroraHost, user: str, **frame) -> bool:
    with ws(host, user) as c:
        send(c, **frame)
        return recv(c)["type"] == "ok"


# ---- per user per room ----------------------------------------------------------


def test_ten_fast_messages_three_delivered_seven_limited_and_retry_after_works(replicas, user, redis_server):
    a, _ = replicas
    with ws(a, user) as c:
        replies = burst(c, 10, text="spam")  # the seed's plain {"text"}: type "message", room "general"
        assert kinds(replies) == ["ok"] * 3 + ["rate_limited"] * 7, replies
        assert [r["ref"] for r in replies] == list(range(10))  # order kept, refs echoed
        for r in replies[3:]:
            assert r["limit"] == "room" and 0 < r["retry_after_ms"] <= 1000, r

        # The seed's key shape holds the budget, and the script set its expiry.
        r = redis.Redis(host=redis_server.host, port=redis_server.port)
        key = f"rate:{user}:general"
        assert r.type(key) == b"list" and r.llen(key) == 3
        assert 0 < r.pttl(key) <= 1000

        # Honouring retry_after_ms succeeds (it is measured from the check,
        # which happened before we read the reply).
        time.sleep(replies[-1]["retry_after_ms"] / 1000)
        send(c, text="after waiting", ref="late")
        assert recv(c) == {"type": "ok", "of": "message", "ref": "late"}


def test_same_budget_across_replicas(replicas, user):
    a, b = replicas
    with ws(a, user) as ca, ws(b, user) as cb:
        for i in range(10):  # alternate A, B, A, B, ... as fast as possible
            send(ca if i % 2 == 0 else cb, text=f"m{i}", ref=i)
        got = [recv(ca) for _ in range(5)] + [recv(cb) for _ in range(5)]
    assert sum(r["type"] == "ok" for r in got) == 3, got
    assert sum(r["type"] == "rate_limited" for r in got) == 7, got


def test_rooms_have_separate_budgets_and_reset_after_the_window(replicas, user):
    a, b = replicas
    with ws(a, user) as c:
        assert kinds(burst(c, 4, type="message", room="r1", text="x")) == ["ok"] * 3 + ["rate_limited"]
        # Another room still has its own 3 (the per-user limit is 5).
        assert kinds(burst(c, 2, type="message", room="r2", text="x")) == ["ok", "ok"]
    # The window slides past: r1 admits again, on either replica.
    poll(lambda: delivered(b, user, type="message", room="r1", text="again"), 5 * WINDOW_S,
         "the per-room budget came back after its window")


def test_boundary_burst_is_refused(replicas, user):
    """The seed's fixed window lets 3 messages at the end of one window and 3
    at the start of the next through (6 in 2 ms). Here the window slides: no
    1 s span, wherever it starts, holds more than 3 delivered messages.

    Schedule (client clock): 1 message at 0 s, which opens the seed's
    window; 2 at 0.9 s (the end of that window: 3 in it); 3 at 1.1 s (after
    the seed's window reset). The seed would deliver all 3 of the last
    burst, i.e. 5 messages within 0.2 s. The sliding window delivers 1: the
    2 sent at 0.9 s are still inside every window that contains 1.1 s."""
    a, _ = replicas
    with ws(a, user) as c:
        t0 = time.monotonic()
        assert kinds(burst(c, 1, text="open")) == ["ok"]
        time.sleep(max(0.0, t0 + 0.9 - time.monotonic()))
        assert kinds(burst(c, 2, text="end of window")) == ["ok", "ok"]
        time.sleep(max(0.0, t0 + 1.1 - time.monotonic()))
        last = burst(c, 3, text="start of next window")
        assert kinds(last) == ["ok", "rate_limited", "rate_limited"], last
        # And the wait it announces is until the 0.9 s messages leave the window.
        assert 500 < last[-1]["retry_after_ms"] <= 1000, last


def test_seed_six_in_two_ms_is_refused(replicas, user):
    a, _ = replicas
    with ws(a, user) as c:
        for i in range(6):  # 6 frames in one write burst (well under 2 ms)
            send(c, text=f"m{i}", ref=i)
        replies = [recv(c) for _ in range(6)]
    assert kinds(replies).count("ok") == 3, replies


# ---- per user across rooms ------------------------------------------------------


def test_per_user_limit_across_rooms_and_reset(replicas, user):
    a, b = replicas
    with ws(a, user) as ca, ws(b, user) as cb:
        got = []
        for i in range(8):  # one message to each of 8 rooms: no room is over its own 3
            c = ca if i % 2 == 0 else cb
            send(c, type="message", room=f"room{i}", text="hi", ref=i)
            got.append(recv(c))
    assert kinds(got) == ["ok"] * 5 + ["rate_limited"] * 3, got
    assert all(r["limit"] == "user" for r in got[5:]), got
    poll(lambda: delivered(a, user, type="message", room="room9", text="again"), 5 * WINDOW_S,
         "the per-user budget came back after its window")


# ---- per connection: control messages, abuse ----------------------------------


def test_control_messages_limited_per_connection(replicas, user):
    a, _ = replicas
    with ws(a, user) as c:
        replies = burst(c, 5, type="typing", room="general")
        assert kinds(replies) == ["ok"] * 3 + ["rate_limited"] * 2, replies
        assert replies[-1]["limit"] == "control"
        # Another connection of the same user has its own control budget.
        with ws(a, user) as other:
            assert kinds(burst(other, 1, type="typing")) == ["ok"]
        # Types that are neither messages nor control pass unchecked.
        assert kinds(burst(c, 5, type="join", room="x")) == ["ok"] * 5
        assert until_delivered(c, 5 * WINDOW_S, type="typing")["type"] == "ok"


def test_repeated_abuse_closes_with_1008(replicas, user):
    a, _ = replicas
    with ws(a, user) as c:
        got = []
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            for i in range(30):  # the close may come before the flood is all sent
                send(c, text="flood", ref=i)
            while True:
                got.append(recv(c))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, closed.value
    assert "abuse" in closed.value.rcvd.reason
    # host->close discards frames still queued for the connection, so how
    # many of the replies arrive before the close frame varies.
    assert set(kinds(got)) <= {"ok", "rate_limited"} and kinds(got).count("ok") <= 3, got
    assert a.metrics().total("aurora_ratelimit_abuse_closes_total") >= 1
    # Only that connection: the user can come back (once the window allows).
    poll(lambda: delivered(a, user, text="back"), 5 * WINDOW_S, "a new connection of the same user works")


# ---- connection attempts per address --------------------------------------------


@pytest.fixture
def connect_host(redis_server, tmp_path_factory):
    prefix = "t" + uuid.uuid4().hex[:8]  # every test connects from 127.0.0.1: a private address budget
    h = start_host(tmp_path_factory, "connect", redis_server.url, key_prefix=prefix,
                   connect_max=3, connect_window_ms=6000)  # long enough for 4 handshakes on a sanitizer build
    yield h
    stop_host(h)


def admitted(h: AuroraHost) -> bool:
    """True if a new connection gets through; False if refused at the upgrade
    (429) or closed with 1008 before its first frame is answered."""
    try:
        with ws(h, "visitor") as c:
            send(c, type="hello")
            return recv(c)["type"] == "ok"
    except websockets.exceptions.InvalidStatus as e:
        assert e.response.status_code == 429, e
        return False
    except websockets.exceptions.ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 1008, e
        return False


def test_connection_attempts_per_address_and_reset(connect_host):
    h = connect_host
    with contextlib.ExitStack() as stack:
        open_conns = [stack.enter_context(ws(h, f"user{i}")) for i in range(3)]
        for c in open_conns:
            send(c, type="hello")
            assert recv(c)["type"] == "ok"
        # The 4th within the window is accepted by the upgrade, checked
        # against the shared budget, and closed with 1008; its frame is never
        # delivered.
        got = []
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            with ws(h, "fourth") as c:
                send(c, type="hello")
                got.append(recv(c))
        assert got == []
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, closed.value
        assert "connection attempts" in closed.value.rcvd.reason
        # Now this replica knows: the next attempt is refused at the upgrade.
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            ws(h)
        assert refused.value.response.status_code == 429
        # Connections already admitted are not affected.
        send(open_conns[0], type="hello")
        assert recv(open_conns[0])["type"] == "ok"
    poll(lambda: admitted(h), 20.0, "the address budget came back after its window")
    m = h.metrics()
    assert m.total("aurora_ratelimit_limited_total", limit="connect") >= 2
    assert m.total("aurora_ratelimit_connect_closes_total") >= 1


# ---- Redis unavailable ----------------------------------------------------------


@pytest.fixture
def outage(tmp_path_factory):
    """A private redis-server the test may stop, and two hosts on it: one
    denying and one allowing messages when Redis fails."""
    own = RedisServer.start()
    hosts = []
    try:
        for policy in ("deny", "allow"):
            hosts.append(start_host(tmp_path_factory, f"outage-{policy}", own.url, on_redis_error=policy,
                                    redis_timeout_ms=300, room_max=100, user_max=100, connect_max=0))
        yield own, hosts[0], hosts[1]
    finally:
        if own.proc and own.proc.running():
            os.kill(own.proc.proc.pid, signal.SIGCONT)  # in case a test left it stopped
        for h in hosts:
            stop_host(h)
        own.stop()


TIMEOUT_S = 0.3
SLACK_S = 0.4  # scheduling on a shared 2-core machine


def timed_reply(c, **frame) -> tuple[dict, float]:
    t = time.monotonic()
    send(c, **frame)
    reply = recv(c)
    return reply, time.monotonic() - t


def ready(h: AuroraHost) -> int:
    return h.get("/ready").status


def test_redis_stopped_follows_on_redis_error_and_recovers(outage, user):
    own, deny, allow = outage
    with ws(deny, user) as cd, ws(allow, user) as ca:
        assert timed_reply(cd, text="before")[0]["type"] == "ok"
        assert timed_reply(ca, text="before")[0]["type"] == "ok"
        poll(lambda: ready(deny) == 200, 5, "/ready with Redis up")

        own.kill_process()
        for _ in range(5):
            reply, took = timed_reply(cd, text="during", ref="d")
            assert reply == {"type": "error", "code": "rate_limit_unavailable", "ref": "d",
                             "message": reply.get("message")}, reply
            assert took < TIMEOUT_S + SLACK_S, took
            reply, took = timed_reply(ca, text="during")
            assert reply["type"] == "ok", reply
            assert took < TIMEOUT_S + SLACK_S, took
        poll(lambda: ready(deny) == 503, 5, "/ready says not ready while Redis is down")

        own.restart()  # same port: the plugin reconnects by itself
        poll(lambda: timed_reply(cd, text="after")[0]["type"] == "ok", 10, "messages pass again after Redis returned")
        poll(lambda: ready(deny) == 200, 5, "/ready again")

    m = deny.metrics()
    assert m.total("aurora_ratelimit_redis_errors_total") >= 5
    assert m.total("aurora_ratelimit_redis_error_verdicts_total", verdict="deny") >= 5
    assert allow.metrics().total("aurora_ratelimit_redis_error_verdicts_total", verdict="allow") >= 5


def test_hung_redis_never_holds_a_message_longer_than_the_timeout(outage, user):
    """SIGSTOP: the server accepts TCP connections (the kernel does) but never
    answers, the worst case for a client. Every message still gets its
    verdict within about redis_timeout_ms."""
    own, deny, allow = outage
    with ws(deny, user) as cd, ws(allow, user) as ca:
        assert timed_reply(cd, text="before")[0]["type"] == "ok"
        os.kill(own.proc.proc.pid, signal.SIGSTOP)
        try:
            for c, want in ((cd, "error"), (ca, "ok"), (cd, "error")):
                t = time.monotonic()
                for i in range(20):  # a burst: later ones queue behind a stuck round trip
                    send(c, text="during", ref=i)
                for i in range(20):
                    assert recv(c, timeout=5)["type"] == want
                took = time.monotonic() - t  # when the last verdict arrived
                print(f"20 verdicts ({want}) within {took * 1000:.0f} ms of the burst")
                assert took < TIMEOUT_S + SLACK_S, took
        finally:
            os.kill(own.proc.proc.pid, signal.SIGCONT)
        poll(lambda: timed_reply(cd, text="after")[0]["type"] == "ok", 10, "messages pass again after Redis woke")


# ---- the echo sample behind it, anonymous users ---------------------------------


def test_with_the_echo_sample_and_anonymous_users(redis_server, tmp_path_factory):
    """Before the chat plugin existed: echo frames counted as messages. Two
    anonymous connections from one address share one budget
    (anonymous_key "address"). The room of a frame without "room"."""
    prefix = "t" + uuid.uuid4().hex[:8]
    cfg = host_config(redis_server.url, key_prefix=prefix, message_types=["message", "echo"], connect_max=0)
    cfg["plugins"].insert(1, {"name": "echo", "path": require(BUILD / "plugins" / "echo.so"), "config": {"tick_ms": 0}})
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("echo"), cfg)
    try:
        with ws(h) as c1, ws(h) as c2:
            send(c1, type="echo", text="a", ref="r1")
            send(c1, type="echo", text="b", ref="r2")
            assert [recv(c1), recv(c1)] == [{"type": "echo", "text": "a", "ref": "r1"},
                                            {"type": "echo", "text": "b", "ref": "r2"}]
            replies = burst(c2, 2, type="echo", text="c")
            assert replies[0] == {"type": "echo", "text": "c", "ref": 0}
            assert replies[1]["type"] == "rate_limited" and replies[1]["ref"] == 1, replies
        # A frame without "room" counts against the room the connection
        # joined last (echo joins through host->room_join, as chat does),
        # else default_room.
        r = redis.Redis(host=redis_server.host, port=redis_server.port)
        with ws(h, "joiner") as c:
            send(c, text="plain")
            assert recv(c)["type"] == "ok"  # passed the limiter and echo (which does not handle "message")
            assert r.llen(f"{prefix}:joiner:general") == 1
            send(c, type="join", room="lobby")
            assert recv(c) == {"type": "joined", "room": "lobby"}
            send(c, text="plain")
            assert recv(c)["type"] == "ok"
            assert r.llen(f"{prefix}:joiner:lobby") == 1
            send(c, type="message", room="other", text="explicit")
            assert recv(c)["type"] == "ok"
            assert r.llen(f"{prefix}:joiner:other") == 1
    finally:
        stop_host(h)


def start_in_front_of_chat(redis_server, tmp_path_factory, name: str, **ratelimit):
    """ratelimit, then chat on a stream of its own: (stream, host, redis client)."""
    stream = f"t-{name}-" + uuid.uuid4().hex[:8]
    cfg = host_config(redis_server.url, connect_max=0, **ratelimit)
    cfg["plugins"].insert(1, {"name": "chat", "path": require(BUILD / "plugins" / "chat.so"),
                              "config": {"stream": stream}})
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp(name), cfg)
    return stream, h, redis.Redis(host=redis_server.host, port=redis_server.port)


def test_in_front_of_the_chat_plugin(redis_server, tmp_path_factory, user):
    """The production pipeline: refused messages never reach chat, so they
    are neither acknowledged, nor published, nor in the stream; a plain
    {"text"} after a join counts against the joined room."""
    stream, h, r = start_in_front_of_chat(redis_server, tmp_path_factory, "chat")
    try:
        with ws(h, user) as c:
            for i in range(10):
                send(c, text=f"m{i}", ref=f"r{i}")
            got: dict[str, list] = {}
            while len(got.get("ack", [])) + len(got.get("rate_limited", [])) < 10:
                frame = recv(c)
                got.setdefault(frame["type"], []).append(frame.get("ref"))
            assert got["ack"] == ["r0", "r1", "r2"], got
            assert got["rate_limited"] == [f"r{i}" for i in range(3, 10)], got
            assert r.xlen(stream) == 3

            send(c, type="join", room="lobby", ref="j")
            poll(lambda: recv(c).get("ref") == "j", 5, "the join's answer")  # presence frames may come first
            send(c, text="in lobby", ref="l")
            poll(lambda: recv(c).get("type") == "ack", 5, "the ack of the message in lobby")
            assert r.llen(f"rate:{user}:lobby") == 1
    finally:
        stop_host(h)


# ---- metrics, config ---------------------------------------------------------------


def test_script_flush_is_survived_by_ratelimit_and_chat(redis_server, tmp_path_factory, user):
    """SCRIPT FLUSH between two messages (an operator, or a Redis that lost
    its scripts): both plugins get NOSCRIPT for the scripts they loaded.
    ratelimit re-runs the check with EVAL, chat loads its scripts again and
    sends once more: the message is acked, counted once and stored once."""
    stream, h, r = start_in_front_of_chat(redis_server, tmp_path_factory, "flush", room_max=100)
    try:
        with ws(h, user) as c:
            def acked(ref: str) -> dict:
                """The answer to `ref` (chat also sends the message itself back, with the ref)."""
                send(c, text=ref, ref=ref)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    f = recv(c)
                    if f.get("ref") == ref and f["type"] != "message":
                        return f
                pytest.fail(f"no answer to {ref} within 5 s")
            assert acked("before")["type"] == "ack"
            r.script_flush()
            assert acked("after-flush")["type"] == "ack"
            assert acked("again")["type"] == "ack"
            assert r.xlen(stream) == 3
            assert r.llen(f"rate:{user}:general") == 3  # each message counted once
    finally:
        stop_host(h)


def test_metrics(replicas, user):
    a, _ = replicas
    with ws(a, user) as c:
        burst(c, 5, text="x")
        burst(c, 5, type="typing")
    m = a.metrics()
    for name in ("aurora_ratelimit_checks_total", "aurora_ratelimit_allowed_total"):
        assert m.total(name, kind="message") >= 5 and m.total(name, kind="control") >= 3, m.dump(name)
    assert m.total("aurora_ratelimit_limited_total", limit="room") >= 2
    assert m.total("aurora_ratelimit_limited_total", limit="control") >= 2
    assert m.has_family("aurora_ratelimit_redis_errors_total")
    assert m.total("aurora_ratelimit_check_latency_seconds_count") >= 5
    assert m.total("aurora_ratelimit_batch_checks_count") >= 1


def test_a_typo_in_the_config_stops_the_host(redis_server, tmp_path):
    import subprocess

    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(host_config(redis_server.url, room_maxx=3)))
    out = subprocess.run([require(HOST), "--check-config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "unknown setting" in out.stderr and "room_maxx" in out.stderr, out.stderr
    cfg.write_text(json.dumps(host_config(redis_server.url, on_redis_error="maybe")))
    out = subprocess.run([require(HOST), "--check-config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "on_redis_error" in out.stderr + out.stdout
