"""Acceptance: history pages through a room's stored messages in order, with
no gap or repeat (also across milliseconds that hold more messages than a
page), caps `limit`, never shows another room, and refuses unauthenticated
requests. Over HTTP and over the WebSocket."""

from __future__ import annotations

import json
import time

import pytest
from websockets.sync.client import connect

from ingest_support import PROBE, SECRET, oid, require, wait_for, wait_ready
from tokens import make_token

ROOM, OTHER = "hist", "hist-other"


def token(**over) -> str:
    claims = {"userId": oid(1), "username": "reader", "exp": int(time.time()) + 600}
    claims.update(over)
    return make_token(claims, SECRET)


@pytest.fixture
def history_host(ctx, start_host):
    """1,000 messages in ROOM and 500 in OTHER, interleaved; three bursts of
    150 messages share one millisecond each (more than the page cap)."""
    entries = []
    base = int(time.time() * 1000) - 60_000
    ms = base
    n_room = 0
    for i in range(1500):
        room = OTHER if i % 3 == 2 else ROOM
        if room == ROOM:
            n_room += 1
        entries.append((room, i))
    fields, ids = [], []
    burst_starts = {100, 700, 1200}
    i = 0
    while i < len(entries):
        if i in burst_starts:
            ms += 1
            for seq in range(150):
                room, k = entries[i + seq]
                ids.append(f"{ms}-{seq}")
                fields.append(_f(room, k))
            i += 150
        else:
            ms += 1
            room, k = entries[i]
            ids.append(f"{ms}-0")
            fields.append(_f(room, k))
            i += 1
    p = ctx.r.pipeline(transaction=False)
    for sid, f in zip(ids, fields):
        p.xadd(ctx.stream, f, id=sid)
    p.execute()
    host = start_host(ctx.host_config([{"name": "probe", "path": require(PROBE)},
                                       ctx.ingest_plugin(workers=2, history=True, history_max_limit=100)]))
    wait_ready(host)
    wait_for(ctx.drained, "the group to drain", timeout=60, interval=0.2)
    room_ids = [sid for sid, f in zip(ids, fields) if f["roomId"] == ROOM]
    assert len(room_ids) == 1000
    yield host, room_ids, dict(zip(ids, fields))
    assert host.stop() == (0, False), host.stderr_tail()


def _f(room: str, k: int) -> dict:
    return {"roomId": room, "userId": oid(k % 5 + 1), "text": f"{room} #{k}", "username": f"user{k % 5}"}


def get(host, target: str, tok: str | None = None):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return host.get(target, headers=headers)


def test_http_history_pages_in_order_without_gap_or_repeat(history_host):
    host, room_ids, fields = history_host
    tok = token()
    seen, before, pages = [], None, 0
    while True:
        target = f"/api/rooms/{ROOM}/messages?limit=1000" + (f"&before={before}" if before else "")
        resp = get(host, target, tok)
        assert resp.status == 200, resp.body
        page = resp.json()
        pages += 1
        assert page["room"] == ROOM
        assert len(page["messages"]) <= 100  # limit=1000 is capped
        seen.extend(page["messages"])
        before = page["next_before"]
        if before is None:
            break
        assert before == page["messages"][-1]["id"]
        assert pages < 20
    assert pages == 10 or pages == 11
    assert [m["id"] for m in seen] == list(reversed(room_ids))  # newest first, no gap, no repeat
    assert all(m["room"] == ROOM for m in seen)
    m = seen[0]
    f = fields[m["id"]]
    assert m == {"type": "message", "id": m["id"], "room": ROOM, "user": f["username"], "userId": f["userId"],
                 "text": f["text"], "ts": int(m["id"].split("-")[0])}

    small = get(host, f"/api/rooms/{ROOM}/messages?limit=7", tok).json()
    assert [x["id"] for x in small["messages"]] == list(reversed(room_ids))[:7]
    assert small["next_before"] == room_ids[-7]
    default = get(host, f"/api/rooms/{ROOM}/messages", tok).json()
    assert len(default["messages"]) == 50
    empty = get(host, "/api/rooms/nobody-here/messages", tok).json()
    assert empty == {"room": "nobody-here", "messages": [], "next_before": None}


def test_http_history_refuses_unauthenticated_and_bad_requests(history_host):
    host, room_ids, _ = history_host
    target = f"/api/rooms/{ROOM}/messages"
    assert get(host, target).status == 401
    assert get(host, target).headers.get("www-authenticate") == "Bearer"
    assert get(host, target, "not.a.token").status == 401
    assert get(host, target, token(exp=int(time.time()) - 3600)).status == 401
    assert get(host, target, make_token({"userId": oid(1), "username": "x", "exp": int(time.time()) + 60},
                                        "another-secret-0123456789-abcdefghijklmnop")).status == 401
    resp = host.get(target, headers={"Authorization": f"Basic {token()}"})
    assert resp.status == 401 and b"messages" not in resp.body
    tok = token()
    assert get(host, f"{target}?before=yesterday", tok).status == 400
    assert get(host, f"{target}?limit=0", tok).status == 400
    assert get(host, f"{target}?limit=x", tok).status == 400
    assert get(host, "/api/rooms/bad%20room!/messages", tok).status in (400, 404)
    assert get(host, f"/api/rooms/{ROOM}/other", tok).status == 404


def test_websocket_history_matches_http_and_echoes_ref(history_host):
    host, room_ids, _ = history_host
    http_page = get(host, f"/api/rooms/{ROOM}/messages?limit=30&before={room_ids[500]}", token()).json()
    with connect(f"{host.ws_url}/?user={oid(9)}", open_timeout=10, max_size=None) as ws:
        ws.send(json.dumps({"type": "history", "room": ROOM, "before": room_ids[500], "limit": 30, "ref": "h1"}))
        got = json.loads(ws.recv(timeout=10))
        assert got["type"] == "history" and got["ref"] == "h1" and got["room"] == ROOM
        assert got["messages"] == http_page["messages"]
        assert got["next_before"] == http_page["next_before"] == room_ids[500 - 30]
        ws.send(json.dumps({"type": "history", "room": OTHER, "limit": 500}))
        other = json.loads(ws.recv(timeout=10))
        assert len(other["messages"]) == 100 and all(m["room"] == OTHER for m in other["messages"])
        ws.send(json.dumps({"type": "history", "room": ROOM, "before": "nope", "ref": 7}))
        err = json.loads(ws.recv(timeout=10))
        assert (err["type"], err["code"], err["ref"]) == ("error", "bad_field", 7)
        ws.send(json.dumps({"type": "history"}))
        assert json.loads(ws.recv(timeout=10))["code"] == "bad_field"
