"""python_policy inside aurora-host: auth, ratelimit, python_policy, chat,
against real Redis and FerretDB, through real WebSocket clients."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

import aurora
from aurora import client as aurora_client
from aurora import jwt as aurora_jwt
from aurora_host import AuroraHost, HostStartError
from aurora_py_support import REPO, built

SECRET = "python-policy-tests-0123456789-abcdefghijkl"
SAMPLES = str(REPO / "samples" / "python")


def config(redis_server, mongo_server, policy: dict, tmp: Path) -> dict:
    return {
        "log": {"level": "info"},
        "redis": {"url": redis_server.url},
        "mongo": {"url": mongo_server.url(f"py_{uuid.uuid4().hex[:8]}")},
        "jwt": {"secret": SECRET},
        "plugins": [
            {"name": "auth", "path": built("auth"), "config": {"redis_prefix": f"p{uuid.uuid4().hex[:6]}:"}},
            {"name": "ratelimit", "path": built("ratelimit"),
             "config": {"key_prefix": f"r{uuid.uuid4().hex[:6]}", "room_max": 100, "user_max": 100}},
            {"name": "python_policy", "path": built("python_policy"), "config": policy},
            {"name": "chat", "path": built("chat"), "config": {"stream": f"s:{uuid.uuid4().hex[:6]}"}},
        ],
    }


def start(redis_server, mongo_server, tmp_path: Path, policy: dict) -> AuroraHost:
    return AuroraHost.start(Path(built("aurora-host")), tmp_path, config(redis_server, mongo_server, policy, tmp_path))


def client(host: AuroraHost, user: str) -> aurora_client.Client:
    # A fresh user id per connection: chat deduplicates a (user, ref) pair across hosts sharing Redis.
    c = aurora_client.connect(host.ws_url, aurora_jwt.encode(f"id-{user}-{uuid.uuid4().hex[:8]}", user, SECRET))
    c.receive("presence", where=lambda f: "users" in f, timeout=10)  # joined the default room
    return c


def answer(c: aurora_client.Client, ref: str) -> dict:
    """The server's answer to the request sent with `ref` (an ack or an error)."""
    return c.receive(where=lambda f: f.get("ref") == ref, timeout=10)


def chat_text(c: aurora_client.Client) -> str:
    return c.receive("message", timeout=10)["text"]


@pytest.mark.parametrize("mode", ["replace", "drop"])
def test_profanity_policy_between_ratelimit_and_chat(redis_server, mongo_server, tmp_path, mode):
    host = start(redis_server, mongo_server, tmp_path,
                 {"module": "profanity_policy", "path": [SAMPLES], "options": {"mode": mode}})
    try:
        with client(host, "alice") as alice, client(host, "bob") as bob:
            alice.send("hello there", ref="1")
            ack = answer(alice, "1")
            assert ack["type"] == "ack", ack
            assert chat_text(bob) == "hello there"
            alice.send("well darn it", ref="2")
            if mode == "replace":
                assert chat_text(bob) == "well **** it"
            else:
                err = alice.receive("error", timeout=10)
                assert err == {"type": "error", "code": "policy", "message": "watch your language", "ref": "2"}
            alice.send("bye", ref="3")
            ack = answer(alice, "3")
            assert ack["type"] == "ack", ack
            assert chat_text(bob) == "bye", "the dropped message never reached chat"
        m = host.metrics()
        verdict = "replace" if mode == "replace" else "drop"
        assert m.total("aurora_python_policy_messages_total", verdict=verdict) == 1
        assert m.total("aurora_python_policy_messages_total", verdict="allow") == 2
    finally:
        assert host.stop() == (0, False), host.stderr_tail()


SLOW_START = """
import time
from aurora_policy import Message
# A start-up that keeps the host from running its loop for 0.6 s, three times
# ratelimit's redis_timeout_ms (200): ratelimit, loaded before this plugin,
# began connecting to Redis before it.
time.sleep(0.6)
def on_message(msg: Message) -> None:
    return None
"""


def test_a_slow_plugin_start_up_does_not_count_against_redis_deadlines(redis_server, mongo_server, tmp_path):
    """Time the loop did not run is no Redis timeout: the connection ratelimit
    started before a slow init is used, not declared unreachable (a CI failure:
    it was dropped on the loop's first tick, the first message was refused)."""
    (tmp_path / "slow_policy.py").write_text(SLOW_START)
    host = start(redis_server, mongo_server, tmp_path / "h", {"module": "slow_policy", "path": [str(tmp_path)]})
    try:
        with client(host, "erin") as erin, client(host, "frank") as frank:
            erin.send("first", ref="1")
            ack = answer(erin, "1")
            assert ack["type"] == "ack", ack
            assert chat_text(frank) == "first"
        log = "\n".join(host.stderr_lines())
        assert "cannot connect" not in log and "rate-limit check failed" not in log, log
    finally:
        assert host.stop() == (0, False), host.stderr_tail()


RAISING = """
from aurora_policy import Message
def on_message(msg: Message) -> None:
    if "boom" in (msg.text or ""):
        raise ValueError("policy bug: " + msg.text)
"""


@pytest.mark.parametrize("fallback", ["allow", "drop"])
def test_a_raising_policy_follows_the_fallback(redis_server, mongo_server, tmp_path, fallback):
    (tmp_path / "raising_policy.py").write_text(RAISING)
    host = start(redis_server, mongo_server, tmp_path / "h",
                 {"module": "raising_policy", "path": [str(tmp_path)], "fallback": fallback})
    try:
        with client(host, "carol") as carol, client(host, "dave") as dave:
            carol.send("boom", ref="b")
            if fallback == "allow":
                assert chat_text(dave) == "boom"
            else:
                assert carol.receive("error", timeout=10)["code"] == "policy_error"
            carol.send("fine")
            assert chat_text(dave) == "fine"
        assert host.metrics().total("aurora_python_policy_errors_total") == 1
        log = "\n".join(host.stderr_lines())
        assert "Traceback (most recent call last)" in log and "ValueError: policy bug: boom" in log
    finally:
        assert host.stop() == (0, False), host.stderr_tail()


def test_an_import_failure_stops_start_up_with_exit_2_and_the_traceback(redis_server, mongo_server, tmp_path):
    (tmp_path / "broken_policy.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(HostStartError) as err:
        start(redis_server, mongo_server, tmp_path / "h", {"module": "broken_policy", "path": [str(tmp_path)]})
    text = str(err.value)
    assert "exited with code 2" in text
    assert "Traceback (most recent call last)" in text
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in text


def test_bad_policy_settings_are_refused(tmp_path):
    cfg = tmp_path / "c.json"
    for policy, why in [({}, 'module\\" is required'), ({"module": "x", "fallback": "maybe"}, 'bad value'),
                        ({"module": "x", "modul": 1}, 'unknown setting \\"modul')]:
        cfg.write_text(json.dumps({"plugins": [{"name": "python_policy", "path": built("python_policy"),
                                                "config": policy}]}))
        out = subprocess.run([built("aurora-host"), "--check-config", str(cfg)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2 and why in out.stderr + out.stdout


def test_policy_under_aurora_plugin_replies_and_joins(tmp_path):
    """python_policy driven by aurora.Plugin inside this very interpreter."""
    (tmp_path / "router_policy.py").write_text(textwrap.dedent("""
        from aurora_policy import Message, Verdict, reply, allow
        def on_message(msg: Message) -> Verdict:
            if msg.text == "/whoami":
                return reply({"type": "whoami", "user": msg.user, "room": msg.room})
            return allow()
        def on_join(view: Message) -> bool:
            return view.room != "secret"
    """))
    with aurora.Plugin.load(built("python_policy"), {"module": "router_policy", "path": [str(tmp_path)]}) as p:
        c = p.connect("u1", "Una")
        m = p.message(c, {"type": "message", "text": "/whoami", "room": "lobby"})
        assert (m.verdict, m.reply) == ("reply", {"type": "whoami", "user": "Una", "room": "lobby"})
        assert p.message(c, {"text": "hi"}).verdict == "continue"
        assert p.message(c, {"type": "typing"}).verdict == "continue"  # not in `types`: Python not called
        assert p.join(c, "secret") == "denied" and p.join(c, "lobby") == "ok"
        assert p.metrics()['aurora_python_policy_messages_total{verdict="reply"}'] == 1


def test_policy_in_an_embedded_host_inside_this_interpreter(tmp_path):
    """aurora.Host + python_policy in pytest's own process: the plugin uses the
    running interpreter; its service thread takes the GIL per message while
    this thread waits on the socket with the GIL released."""
    (tmp_path / "upper_policy.py").write_text(textwrap.dedent("""
        import threading
        from aurora_policy import Message, Verdict, replace
        def on_message(msg: Message) -> Verdict:
            return replace((msg.text or "").upper() + " @" + threading.current_thread().name[:5])
    """))
    cfg = {"listen": {"host": "127.0.0.1", "port": 0}, "allow_anonymous": True, "log": {"level": "warn"},
           "plugins": [{"name": "python_policy", "path": built("python_policy"),
                        "config": {"module": "upper_policy", "path": [str(tmp_path)], "types": ["echo"]}},
                       {"name": "echo", "path": built("echo")}]}
    with aurora.Host(cfg) as host, aurora_client.connect(host.ws_url) as c:
        for i in range(20):
            c.send_frame({"type": "echo", "text": f"hi {i}"})
            assert c.receive("echo")["text"] == f"HI {i} @Dummy"  # a native thread, seen from Python
    assert host.stop() == 0
