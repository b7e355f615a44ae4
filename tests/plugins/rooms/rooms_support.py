"""What the rooms tests share: HS256 tokens as the auth plugin issues them,
the plugins' paths, and a WebSocket client that keeps frames it was not
waiting for."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from websockets.sync.client import connect

from aurora_host import AuroraHost, build_dir
from frame_waiter import FrameWaiter

BUILD = build_dir()
SECRET = "rooms-tests-0123456789-abcdefghijklmnop"
TIMEOUT = 10.0


def token(user: dict) -> str:
    """An HS256 token as the auth plugin issues them (userId, username, exp)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    claims = {"userId": user["id"], "username": user["name"], "iat": int(time.time()), "exp": int(time.time()) + 3600}
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest())


def plugin(name: str) -> str:
    p = BUILD / "plugins" / f"{name}.so"
    if not p.exists():
        pytest.fail(f"{p} is missing: build it first")
    return str(p)


class Client(FrameWaiter):
    def __init__(self, host: AuroraHost, user: dict):
        # max_queue=None: see tests/plugins/chat/chat_support.py (a close waits 10 s behind 16 unread frames).
        self.ws = connect(f"{host.ws_url}/?token={token(user)}", open_timeout=TIMEOUT, ping_interval=None,
                          max_queue=None).__enter__()
        self.user = user
        self.frames: list[dict] = []
        self.n = 0
        self.tag = uuid.uuid4().hex[:6]  # refs of its own: live messages carry their sender's ref
        self.wait(lambda f: f.get("type") == "presence" and "users" in f, "the automatic join")

    def wait(self, pred, what: str, timeout: float = TIMEOUT) -> dict:
        return FrameWaiter.wait(self, pred, what, timeout)

    def ask(self, **frame) -> dict:
        """Sends a request with a fresh ref; its answer (ack, error, ...)."""
        self.n += 1
        ref = f"{self.tag}-{self.n}"
        self.ws.send(json.dumps({**frame, "ref": ref}))
        return self.wait(lambda f: f.get("ref") == ref, f"the answer to {frame}")

    def ok(self, **frame) -> dict:
        got = self.ask(**frame)
        assert got["type"] != "error", (frame, got)
        return got

    def refused(self, code: str, **frame) -> dict:
        got = self.ask(**frame)
        assert got["type"] == "error" and got["code"] == code, (frame, got)
        return got

    def no_message(self, room: str, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                f = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                return
            assert not (f.get("type") == "message" and f.get("room") == room), f"still delivered: {f}"
            self.frames.append(f)

    def close(self) -> None:
        self.ws.close()
