"""A message the server has received is stored, whether or not its sender
waits for the answer: five users each send three messages through the
seed's pipeline shape (ratelimit, then chat: both hold the message PENDING
while they talk to Redis) and close at once. All fifteen are in the stream.

In the `redis_slow` case Redis is paused (SIGSTOP) for 300 ms around the
sends and the closes (within the plugins' Redis timeouts, raised for the
test): every check finishes after its sender has gone. The landed host dropped all 15 there
(a message resumed for a closed connection was discarded)."""

from __future__ import annotations

import socket
import struct
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_py

import os
import signal

from aurora_host import OP_CLOSE, AuroraHost, RawWebSocket, build_dir
from real_servers import RedisServer

BUILD = build_dir()
HOST, PROBE = BUILD / "host" / "aurora-host", BUILD / "tests" / "host" / "api" / "probe.so"
CHAT, RATELIMIT = BUILD / "plugins" / "chat.so", BUILD / "plugins" / "ratelimit.so"


def require(p: Path) -> str:
    if not p.is_file():
        pytest.fail(f"{p} is missing: build it first (cmake --build {BUILD})")
    return str(p)


@pytest.fixture
def private_redis():
    srv = RedisServer.start()  # paused by one case: not the session's server
    yield srv
    srv.stop()


@pytest.mark.parametrize("how", ["close_frame", "reset", "redis_slow"])
def test_messages_sent_right_before_closing_are_stored(private_redis, tmp_path, how):
    redis_server = private_redis
    stream = f"chat:messages:{uuid.uuid4().hex[:8]}"
    cfg = {"log": {"level": "info", "format": "json"}, "redis": {"url": redis_server.url},
           "plugins": [{"name": "probe", "path": require(PROBE)},
                       {"name": "ratelimit", "path": require(RATELIMIT),
                        "config": {"key_prefix": "rl" + uuid.uuid4().hex[:6], "redis_timeout_ms": 3000}},
                       {"name": "chat", "path": require(CHAT), "config": {"stream": stream}}]}
    host = AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    r = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        clients = [RawWebSocket(host.port, f"/?user=u{k}") for k in range(5)]
        frames_in = host.metrics().total("aurora_frames_in_total")
        if how == "redis_slow":
            os.kill(redis_server.proc.proc.pid, signal.SIGSTOP)
            paused_at = time.monotonic()
        for k, ws in enumerate(clients):
            for i in range(3):
                ws.send_json({"text": f"u{k}-m{i}"})
        if how == "reset":  # the host must have read them: unread bytes die with the RST in the kernel
            deadline = time.monotonic() + 10
            while host.metrics().total("aurora_frames_in_total") < frames_in + 15 and time.monotonic() < deadline:
                time.sleep(0.01)  # polling a counter, bounded
        for ws in clients:
            if how in ("close_frame", "redis_slow"):
                # A clean close: the close frame, then read until the server's
                # close (closing a socket with unread input makes the kernel
                # send a reset, which discards what the server has not read).
                ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
                ws.drain_until_closed(5.0)
            else:
                ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.close()
        if how == "redis_slow":
            time.sleep(max(0.0, 0.3 - (time.monotonic() - paused_at)))  # the fault's length, not a wait for readiness
            os.kill(redis_server.proc.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while r.xlen(stream) < 15 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the stream, bounded
        texts = sorted(fields["text"] for _, fields in r.xrange(stream))
        assert texts == sorted(f"u{k}-m{i}" for k in range(5) for i in range(3)), texts
    finally:
        r.close()
        assert host.stop() == (0, False), host.stderr_tail()
