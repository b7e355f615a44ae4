"""What the chat tests share: an aurora-host replica with the probe fixture
plugin (identity from ?user=NAME) and chat, and a websockets client that
keeps every frame to wait for a condition with a deadline."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import redis as redis_py
from websockets.sync.client import connect

from aurora_host import AuroraHost, build_dir
from frame_waiter import FrameWaiter

BUILD = build_dir()
HOST = BUILD / "host" / "aurora-host"
PROBE = BUILD / "tests" / "host" / "api" / "probe.so"
CHAT = BUILD / "plugins" / "chat.so"
TIMEOUT = 10.0


def require(p: Path) -> str:
    if not p.is_file():
        pytest.fail(f"{p} is missing: build it first (cmake --build {BUILD})")
    return str(p)


# The host's per-connection frame budgets (docs/configuration.md) are lifted:
# these tests are about what the chat plugin does with what gets through.
NO_FRAME_BUDGETS = {"frames_per_s": 1000000, "frames_burst": 1000000, "max_pending_per_conn": 1 << 20,
                    "frame_budgets": {t: {"per_s": 0, "burst": 1} for t in
                                      ("join", "leave", "resume", "history", "presence", "read", "typing",
                                                       "edit", "delete", "react", "receipts", "search")}}


def chat_config(redis: str | dict, **chat) -> dict:
    """`redis`: a URL, or the host's whole "redis" section (sentinel mode)."""
    settings = {"presence_ttl_s": 3, "presence_refresh_s": 1, "max_rooms": 8}
    settings.update(chat)
    return {"log": {"level": "info", "format": "json"},
            "redis": redis if isinstance(redis, dict) else {"url": redis},
            "limits": {"send_queue_max_frames": 100000, "send_queue_max_bytes": 64 << 20, **NO_FRAME_BUDGETS},
            "plugins": [{"name": "probe", "path": require(PROBE)},
                        {"name": "chat", "path": require(CHAT), "config": settings}]}


def wait_ready(host: AuroraHost, want: int = 200, deadline_s: float = TIMEOUT) -> None:
    deadline = time.monotonic() + deadline_s
    status = None
    while time.monotonic() < deadline:
        status = host.get("/ready").status
        if status == want:
            return
        time.sleep(0.02)  # polling /ready, bounded
    pytest.fail(f"/ready stayed {status}, wanted {want}")


def start_replica(tmp: Path, redis: str | dict, **chat) -> AuroraHost:
    h = AuroraHost.start(Path(require(HOST)), tmp, chat_config(redis, **chat))
    wait_ready(h)
    return h


class Client(FrameWaiter):
    """A websockets client that keeps every frame, to wait for a condition."""

    def __init__(self, host: AuroraHost, user: str):
        # No keepalive pings: a test busy elsewhere reads nothing, and the
        # pongs would wait behind the frames it has not read. No flow
        # control either (max_queue=None): with 16 frames unread the client
        # stops reading the socket, and close() then waits its whole
        # close_timeout (10 s) for a close frame it does not read.
        self.ws = connect(f"{host.ws_url}/?user={user}", open_timeout=TIMEOUT, max_size=None,
                          ping_interval=None, max_queue=None).__enter__()
        self.frames: list[dict] = []

    def send(self, **frame) -> None:
        self.ws.send(json.dumps(frame))

    def wait(self, pred, what: str, timeout: float = TIMEOUT) -> dict:
        return FrameWaiter.wait(self, pred, what, timeout)

    def messages(self, n: int, room: str = "general", timeout: float = TIMEOUT) -> list[dict]:
        return [self.wait(lambda f: f.get("type") == "message" and f.get("room") == room, f"message {i + 1}/{n}",
                          timeout) for i in range(n)]

    def settled(self) -> None:
        """Waits until the automatic join of the default room took effect."""
        self.wait(lambda f: f.get("type") == "presence" and "users" in f, "presence snapshot")

    def close(self) -> None:
        self.ws.close()


def wait_presence(c: Client, room: str, want: set[str], deadline_s: float = TIMEOUT) -> set[str]:
    """Asks `room`'s presence snapshot until its users are `want` (entries of
    a replica that died without a goodbye expire after presence_ttl_s)."""
    deadline = time.monotonic() + deadline_s
    users: set[str] = set()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        ref = f"presence-{n}"
        c.send(type="presence", room=room, ref=ref)
        snap = c.wait(lambda f: f.get("ref") == ref, "snapshot")
        users = {u["userId"] for u in snap["users"]}
        if users == want:
            return users
        time.sleep(0.2)  # presence expiry is time-based: poll it, bounded
    return users


def replica_attached_after(nodes) -> list[float]:
    """Records (in a thread, bounded) when one of `nodes` (servers with
    .host and .port: the old replicas of a killed master) is a master with a
    replica online: Redis's own view, what WAIT needs. The failover alone is
    not enough for WAIT; the other replica must sync with the new master
    first (Redis's time: 0.1 to 5 s after the promotion in these runs)."""
    at: list[float] = []

    def poll() -> None:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            for s in nodes:
                try:
                    with redis_py.Redis(host=s.host, port=s.port, socket_timeout=1) as r:
                        info = r.info("replication")
                except (redis_py.RedisError, OSError):
                    continue
                if info.get("role") == "master" and any(
                        isinstance(v, dict) and v.get("state") == "online"
                        for k, v in info.items() if k.startswith("slave")):
                    at.append(time.monotonic())
                    return
            time.sleep(0.02)  # polling Redis's own state, bounded by the deadline

    threading.Thread(target=poll, daemon=True).start()
    return at


def wait_recorded(at: list[float], what: str, seconds: float = 5.0) -> float:
    """The first time a poller thread recorded in `at`; it has seen the
    state or is about to (it polls every 20 ms)."""
    seen_by = time.monotonic() + seconds
    while not at and time.monotonic() < seen_by:
        time.sleep(0.02)  # waits for the poller thread's record, bounded
    assert at, what
    return at[0]
