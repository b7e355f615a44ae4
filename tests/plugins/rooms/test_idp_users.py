"""A product's users signed in by its identity provider, through every plugin
that reads tokens: the handshake (auth), a private room and its REST
interface (rooms), messages stored under the provider's `sub` (ingest with
user_ids "any") and history over REST with the provider's bearer token."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pymongo
import pytest
from websockets.sync.client import connect

from aurora_host import AuroraHost, http_request
from rooms_support import BUILD, SECRET, TIMEOUT, plugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))
from idp import AUDIENCE, ISSUER, Key, claims, jwks  # noqa: E402


@pytest.fixture
def idp_world(redis_server, mongo_server, tmp_path):
    key = Key("k1", "ES256")
    keys = tmp_path / "jwks.json"
    keys.write_text(jwks(key))
    db = f"idp_{uuid.uuid4().hex[:8]}"
    stream = f"idp:{uuid.uuid4().hex[:6]}"
    prefix = f"idp{uuid.uuid4().hex[:6]}:"
    cfg = {"log": {"level": "info", "format": "json"},
           "redis": {"url": redis_server.url}, "mongo": {"url": mongo_server.url(db)},
           "jwt": {"secret": SECRET, "keys_file": str(keys), "issuer": ISSUER, "audience": AUDIENCE},
           "plugins": [{"name": "auth", "path": plugin("auth"), "config": {"redis_prefix": prefix + "auth:"}},
                       {"name": "rooms", "path": plugin("rooms"),
                        "config": {"redis_prefix": prefix, "known_users_only": False}},
                       {"name": "chat", "path": plugin("chat"), "config": {"stream": stream}},
                       {"name": "ingest", "path": plugin("ingest"),
                        "config": {"stream": stream, "history": True, "workers": 1, "user_ids": "any"}}]}
    host = AuroraHost.start(BUILD / "host" / "aurora-host", tmp_path / "h", cfg)
    mongo = pymongo.MongoClient(mongo_server.url(db), serverSelectionTimeoutMS=5000)
    try:
        deadline = time.monotonic() + TIMEOUT
        while host.get("/ready").status != 200:
            assert time.monotonic() < deadline, host.stderr_tail()
            time.sleep(0.02)  # polling /ready, bounded
        yield host, key, mongo[db]
    finally:
        mongo.close()
        assert host.stop() == (0, False), host.stderr_tail()


def ask(ws, frame: dict) -> dict:
    ref = uuid.uuid4().hex[:8]
    ws.send(json.dumps({**frame, "ref": ref}))
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        f = json.loads(ws.recv(timeout=TIMEOUT))
        if f.get("ref") == ref and f.get("type") != "message":
            return f
    raise AssertionError(f"no answer to {frame}")


def test_provider_users_chat_in_a_private_room_and_read_its_history(idp_world):
    host, key, db = idp_world
    ada = key.sign(claims(sub="auth0|ada-1", name="ada"))
    room = f"idp-{uuid.uuid4().hex[:8]}"
    with connect(f"{host.ws_url}/", subprotocols=["Bearer." + ada], open_timeout=5) as ws:
        assert ask(ws, {"type": "room_create", "room": room, "visibility": "private"})["type"] == "ack"
        assert ask(ws, {"type": "join", "room": room})["type"] != "error"
        sent = ask(ws, {"type": "message", "room": room, "text": "hello from the provider"})
        assert sent["type"] == "ack", sent
    deadline = time.monotonic() + TIMEOUT
    while not (doc := db["messages"].find_one({"roomId": room})):
        assert time.monotonic() < deadline, "ingest did not store the message"
        time.sleep(0.05)  # polling for ingest, bounded
    assert doc["userId"] == "auth0|ada-1" and doc["username"] == "ada"  # a string: not an ObjectId
    auth = {"Authorization": f"Bearer {ada}"}
    page = host.get(f"/api/rooms/{room}/messages", headers=auth)
    assert page.status == 200, page.body
    [m] = json.loads(page.body)["messages"]
    assert (m["userId"], m["text"]) == ("auth0|ada-1", "hello from the provider")
    mine = http_request(host.port, "/api/rooms", "GET", headers=auth)
    assert mine.status == 200 and room in mine.body.decode(), mine.body
    # Another provider user is not a member: refused on REST and history alike.
    bob = key.sign(claims(sub="auth0|bob-2", name="bob"))
    assert host.get(f"/api/rooms/{room}/messages", headers={"Authorization": f"Bearer {bob}"}).status == 403
    # A token for another audience is refused by every route.
    stray = key.sign(claims(sub="auth0|ada-1", name="ada", aud="another-app"))
    assert host.get(f"/api/rooms/{room}/messages", headers={"Authorization": f"Bearer {stray}"}).status == 401
    assert http_request(host.port, "/api/rooms", "GET", headers={"Authorization": f"Bearer {stray}"}).status == 401
