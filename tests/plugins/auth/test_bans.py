"""Bans from the chat plugin's server API, refused at the handshake by the
auth plugin (enforce_bans): two replicas (auth + chat with the server API)
on a real Redis and FerretDB. A banned user's upgrade gets 403 `banned` on
both replicas and on one started after the ban; unban lets it in again; a
replica with enforce_bans off lets the upgrade through and chat closes it
(4003) instead."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from aurora_host import AuroraHost, http_request
from auth_support import CHAT, HOST, SECRET, auth_host_config, require
from tokens import make_token
from waiting import wait_until

KEY = secrets.token_hex(24)
KEYS = json.dumps({"keys": [{"name": "mod", "key": KEY, "scopes": ["moderate"]}]})


def replica(redis_server, mongo_server, tmp: Path, **auth) -> AuroraHost:
    cfg = auth_host_config(redis_server, mongo_server, auth_config=auth, with_echo=False)
    cfg["plugins"].append({"name": "chat", "path": require(CHAT), "config": {"server_api": True}})
    h = AuroraHost.start(Path(require(HOST)), tmp, cfg, env={"AURORA_SERVER_API_KEYS": KEYS})
    wait_until(lambda: h.get("/ready").status == 200, "the replica ready (bans loaded)")
    return h


def token(user_id: str) -> str:
    return make_token({"userId": user_id, "username": "u-" + user_id, "exp": int(time.time()) + 600}, SECRET)


def upgrade(h: AuroraHost, user_id: str) -> int:
    """101 when the upgrade is accepted (then closed), else the refusal's status."""
    try:
        with connect(h.ws_url, subprotocols=[f"Bearer.{token(user_id)}"], open_timeout=10):
            return 101
    except InvalidStatus as e:
        if e.response.status_code == 403:  # the reason, as the host sends a refused upgrade's
            assert json.loads(bytes(e.response.body)) == {"error": "banned"}, e.response.body
        return e.response.status_code


def moderate(h: AuroraHost, path: str, body: dict) -> int:
    r = http_request(h.port, "/api/server/" + path, "POST", headers={"Authorization": f"Bearer {KEY}"},
                     body=json.dumps(body).encode())
    return r.status


def test_a_banned_user_is_refused_at_the_handshake_on_every_replica(redis_server, mongo_server, tmp_path):
    a = replica(redis_server, mongo_server, tmp_path / "a")
    b = replica(redis_server, mongo_server, tmp_path / "b")
    late = None
    try:
        user = "64b" + secrets.token_hex(10) + "0"
        assert upgrade(a, user) == 101 and upgrade(b, user) == 101
        assert moderate(a, "ban", {"user_id": user, "duration_s": 600, "reason": "spam"}) == 200
        # The announcement reaches each replica's auth plugin: refused within a second.
        for h in (a, b):
            wait_until(lambda h=h: upgrade(h, user) == 403, "the upgrade refused with 403", timeout=1.0, interval=0.05)
        assert upgrade(a, "someone-else") == 101  # only that user
        late = replica(redis_server, mongo_server, tmp_path / "late")  # loads the bans before it is ready
        assert upgrade(late, user) == 403
        m = late.metrics()
        assert m.total("aurora_auth_handshakes_total") >= 1
        assert moderate(b, "unban", {"user_id": user}) == 200
        for h in (a, b, late):
            wait_until(lambda h=h: upgrade(h, user) == 101, "the upgrade accepted again", timeout=1.0, interval=0.05)
    finally:
        for h in [x for x in (a, b, late) if x]:
            assert h.stop() == (0, False), h.stderr_tail()


def test_without_enforce_bans_the_chat_closes_the_banned_connection(redis_server, mongo_server, tmp_path):
    h = replica(redis_server, mongo_server, tmp_path / "h", enforce_bans=False)
    try:
        user = "64b" + secrets.token_hex(10) + "1"
        assert moderate(h, "ban", {"user_id": user, "duration_s": 600}) == 200
        with connect(h.ws_url, subprotocols=[f"Bearer.{token(user)}"], open_timeout=10) as ws:
            frames = []
            with pytest.raises(Exception) as closed:
                while True:
                    frames.append(json.loads(ws.recv(timeout=5)))
            assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 4003, closed.value
            assert frames and frames[-1]["code"] == "banned"
    finally:
        assert h.stop() == (0, False), h.stderr_tail()
