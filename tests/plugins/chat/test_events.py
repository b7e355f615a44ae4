"""Events out (docs/server-api.md, "Events"): connect, join, message,
leave and disconnect, to a Redis stream and to a webhook (a local HTTP
server here) with a signature, retries with backoff, a bounded queue and a
dead-letter count. Real Redis; identity from the probe fixture plugin."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_py

from aurora_host import AuroraHost, HostStartError, free_port
from chat_support import HOST, TIMEOUT, Client, chat_config, require, wait_ready
from waiting import wait_until

SECRET = secrets.token_hex(24)


class Receiver:
    """A webhook receiver on loopback: records every POST; `fail_next`
    answers 500 that many times first; `stall` holds each answer until set."""

    def __init__(self, port: int = 0):
        self.posts: list[dict] = []
        self.fail_next = 0
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.release.wait(timeout=30)
                with outer.lock:
                    outer.posts.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                    fail = outer.fail_next > 0
                    outer.fail_next -= 1 if fail else 0
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self, ok_only: bool = True) -> list[dict]:
        with self.lock:
            posts = list(self.posts)
        out, seen = [], set()
        for p in posts:
            delivery = p["headers"]["X-Aurora-Delivery"]
            if delivery in seen:  # a retry of a batch already recorded
                continue
            seen.add(delivery)
            out.extend(json.loads(p["body"])["events"])
        return out

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def verify(post: dict) -> bool:
    """The receiver's side of the signature: t=<s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""
    parts = dict(kv.split("=", 1) for kv in post["headers"]["X-Aurora-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + post["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def start(tmp: Path, redis_url: str, **chat) -> AuroraHost:
    h = AuroraHost.start(Path(require(HOST)), tmp, chat_config(redis_url, **chat), env={"AURORA_WEBHOOK_SECRET": SECRET})
    wait_ready(h)
    return h


def metric(h: AuroraHost, name: str) -> float:
    for line in h.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_kind_of_event_reaches_the_stream_and_the_webhook_signed(redis_srv, receiver, tmp_path):
    stream = "events:" + secrets.token_hex(3)
    h = start(tmp_path, redis_srv.url, events_stream=stream, webhook_url=receiver.url, webhook_batch_max=3)
    r = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
    try:
        user = "ev" + secrets.token_hex(3)
        c = Client(h, user)
        c.settled()
        c.send(type="join", room="ev-room", ref="j")
        c.wait(lambda f: f.get("type") == "joined", "joined")
        c.send(type="message", room="ev-room", text="hello events", ref="m1")
        ack = c.wait(lambda f: f.get("ref") == "m1", "ack")
        c.send(type="message", room="ev-room", text="hello events", ref="m1")  # a retry: no second event
        c.wait(lambda f: f.get("ref") == "m1" and f.get("duplicate"), "duplicate ack")
        c.send(type="leave", room="ev-room", ref="l")
        c.wait(lambda f: f.get("type") == "left", "left")
        c.close()
        # general is joined at connect; at the disconnect the host leaves every room first.
        want = ["connect", "join", "join", "message", "leave", "leave", "disconnect"]
        got = wait_until(lambda: (e := [x for x in receiver.events() if x.get("user_id") == user])
                         and [x["type"] for x in e] == want and e, "the webhook's events")
        in_stream = [json.loads(f["event"]) for _, f in r.xrange(stream)]
        assert [e for e in in_stream if e.get("user_id") == user] == got  # the same events, in the same order
        message = got[3]
        assert (message["room"], message["message_id"], message["text"], message["username"]) == \
            ("ev-room", ack["id"], "hello events", "user-" + user)
        assert [got[i]["room"] for i in (1, 2, 4, 5)] == ["general", "ev-room", "ev-room", "general"]
        assert len({e["id"] for e in got}) == len(got) and all(e["replica"] == got[0]["replica"] for e in got)
        assert all(verify(p) for p in receiver.posts)
        assert all(len(json.loads(p["body"])["events"]) <= 3 for p in receiver.posts)
        # A forged or altered body does not verify.
        forged = dict(receiver.posts[0], body=receiver.posts[0]["body"] + b" ")
        assert not verify(forged)
    finally:
        r.close()
        assert h.stop() == (0, False), h.stderr_tail()
    assert SECRET not in h.stderr_path.read_text()


def test_a_failing_webhook_is_retried_with_backoff_then_delivered(redis_srv, receiver, tmp_path):
    receiver.fail_next = 3
    h = start(tmp_path, redis_srv.url, webhook_url=receiver.url, webhook_backoff_ms=100, webhook_max_attempts=5,
              webhook_batch_max=1)
    try:
        c = Client(h, "retry" + secrets.token_hex(3))
        c.settled()
        # More events while it backs off (each wakes the webhook's thread): the backoff holds.
        for i in range(5):
            c.send(type="typing", ref=f"t{i}")
            c.send(type="join", room=f"more-{i}", ref=f"j{i}")
        wait_until(lambda: metric(h, "aurora_chat_webhook_delivered_total") >= 7, "delivery after the retries")
        first = [p for p in receiver.posts if p["headers"]["X-Aurora-Delivery"] == receiver.posts[0]["headers"]["X-Aurora-Delivery"]]
        assert len(first) == 4  # 3 failures, then the same batch delivered
        gaps = [b["at"] - a["at"] for a, b in zip(first, first[1:])]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.18 and gaps[2] >= 0.36, gaps  # 100, 200, 400 ms
        assert metric(h, "aurora_chat_webhook_failed_attempts_total") == 3
        assert metric(h, "aurora_chat_webhook_dead_letters_total") == 0
        c.close()
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


def test_a_receiver_that_was_down_gets_the_events_once_it_is_up(redis_srv, tmp_path):
    port = free_port()  # nobody listens there yet: every POST is refused
    h = start(tmp_path, redis_srv.url, webhook_url=f"http://127.0.0.1:{port}/hook", webhook_backoff_ms=100,
              webhook_max_attempts=30)
    receiver = None
    try:
        user = "down" + secrets.token_hex(3)
        c = Client(h, user)
        c.settled()
        wait_until(lambda: metric(h, "aurora_chat_webhook_failed_attempts_total") >= 2, "refused attempts")
        assert metric(h, "aurora_chat_webhook_delivered_total") == 0
        receiver = Receiver(port)
        got = wait_until(lambda: [e for e in receiver.events() if e.get("user_id") == user and e["type"] == "join"],
                         "the events once the receiver is up", timeout=20)
        assert got[0]["room"] == "general"
        assert all(verify(p) for p in receiver.posts)
        assert [e["type"] for e in receiver.events()][:2] == ["connect", "join"]  # nothing lost, in order
        assert metric(h, "aurora_chat_webhook_dead_letters_total") == 0
        c.close()
    finally:
        assert h.stop() == (0, False), h.stderr_tail()
        if receiver:
            receiver.close()


def test_a_webhook_that_keeps_failing_is_dead_lettered_and_the_chat_goes_on(redis_srv, receiver, tmp_path):
    receiver.fail_next = 10 ** 6
    h = start(tmp_path, redis_srv.url, webhook_url=receiver.url, webhook_backoff_ms=10, webhook_max_attempts=2)
    try:
        c = Client(h, "dead" + secrets.token_hex(3))
        c.settled()
        wait_until(lambda: metric(h, "aurora_chat_webhook_dead_letters_total") >= 2, "dead letters")
        c.send(type="message", text="still served", ref="x")
        assert c.wait(lambda f: f.get("ref") == "x", "ack")["type"] == "ack"
        c.close()
        assert "dead-lettered" in h.stderr_path.read_text()
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


def test_a_stalled_webhook_fills_a_bounded_queue_and_drops_the_rest(redis_srv, receiver, tmp_path):
    receiver.release.clear()  # the receiver holds its answers
    h = start(tmp_path, redis_srv.url, webhook_url=receiver.url, webhook_queue_max=5, webhook_batch_max=1,
              webhook_timeout_ms=20000)
    try:
        clients = []
        for i in range(8):  # 8 connects and 8 joins: 16 events, one in flight, 5 queued
            c = Client(h, f"q{i}")
            c.settled()
            clients.append(c)
        wait_until(lambda: metric(h, "aurora_chat_webhook_dropped_total") >= 10, "events dropped")
        assert metric(h, "aurora_chat_webhook_queued") <= 5
        # The chat itself is not held up by its webhook.
        clients[0].send(type="message", text="not held", ref="x")
        assert clients[0].wait(lambda f: f.get("ref") == "x", "ack")["type"] == "ack"
        receiver.release.set()
        for c in clients:
            c.close()
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


@pytest.mark.parametrize("settings,env,why", [
    ({"webhook_url": "http://127.0.0.1:9/x"}, {}, "needs a secret of at least 32 bytes"),
    ({"webhook_url": "http://127.0.0.1:9/x", "webhook_secret": "short"}, {}, "needs a secret of at least 32 bytes"),
    ({"webhook_url": "ftp://127.0.0.1/x"}, {"AURORA_WEBHOOK_SECRET": SECRET}, "must be an http:// or https:// URL"),
    ({"webhook_url": "http://127.0.0.1:9/x", "webhook_secret": SECRET}, {"AURORA_WEBHOOK_SECRET": SECRET},
     "given twice"),
    ({"webhook_url": "http://127.0.0.1:9/x", "webhook_queue_max": 0}, {"AURORA_WEBHOOK_SECRET": SECRET}, "webhook_queue_max"),
])
def test_bad_event_settings_are_refused_at_start(redis_srv, tmp_path, settings, env, why):
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, chat_config(redis_srv.url, **settings), env=env)
    text = str(err.value)
    assert "exited with code 2" in text and why in text, text[-2000:]
    assert SECRET not in text
