"""Search (docs/ingest.md, "Search"): a room's messages by words, newest
first, paged, over the WebSocket and REST; the latest text of an edited
message, never a deleted one, never another room's or a room the user may
not read; hostile queries (regex metacharacters, operators, 5,000
characters) are plain words or a clear error. Real Redis, real FerretDB
(both backends): FerretDB has no $text, so ingest keeps a word index."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
from websockets.sync.client import connect

from ingest_support import PROBE, SECRET, Ctx, oid, require, wait_for, wait_ready
from tokens import make_token

ROOM, OTHER, SECRET_ROOM = "search-room", "search-other", "search-private"
TEXTS = [
    "The deploy is Friday",            # 0
    "friday lunch at noon?",           # 1
    "Grüße aus Köln",                  # 2
    "regex chars .* and $where stay words",  # 3
    "DEPLOY rollback plan",            # 4
    "typo in teh deploy note",         # 5 (edited below: "teh" -> "the")
    "deleted deploy secret",           # 6 (deleted below)
]


def token(user: int = 1) -> str:
    return make_token({"userId": oid(user), "username": f"u{user}", "exp": int(time.time()) + 600}, SECRET)


@pytest.fixture
def search_host(ctx: Ctx, start_host):
    ids = []
    for i, text in enumerate(TEXTS):
        ids.append(ctx.r.xadd(ctx.stream, {"roomId": ROOM, "userId": oid(1), "username": "u1", "text": text}))
    ctx.r.xadd(ctx.stream, {"roomId": OTHER, "userId": oid(1), "username": "u1", "text": "deploy elsewhere"})
    ctx.r.xadd(ctx.stream, {"roomId": SECRET_ROOM, "userId": oid(2), "username": "u2", "text": "deploy in private"})
    ctx.r.xadd(ctx.stream, {"roomId": ROOM, "userId": oid(1), "username": "u1", "kind": "edit", "target": ids[5],
                            "text": "typo in the deploy note, fixed"})
    ctx.r.xadd(ctx.stream, {"roomId": ROOM, "userId": oid(1), "username": "u1", "kind": "delete", "target": ids[6]})
    ctx.mongo[ctx.db]["rooms"].insert_one({"_id": SECRET_ROOM, "type": "private", "owner": oid(2)})
    host = start_host(ctx.host_config([{"name": "probe", "path": require(PROBE)},
                                       ctx.ingest_plugin(workers=1, history=True, search=True)]))
    wait_ready(host)
    wait_for(ctx.drained, "the group to drain", timeout=30, interval=0.1)
    yield host, ids
    assert host.stop() == (0, False), host.stderr_tail()


def search(host, room: str, q: str, tok: str | None = None, **params):
    target = f"/api/rooms/{room}/search?q={quote(q)}" + "".join(f"&{k}={v}" for k, v in params.items())
    return host.get(target, headers={"Authorization": f"Bearer {tok or token()}"})


def found(host, room: str, q: str, **params) -> list[str]:
    resp = search(host, room, q, **params)
    assert resp.status == 200, resp.body
    return [m["text"] for m in resp.json()["messages"]]


def test_words_newest_first_latest_text_never_deleted_never_elsewhere(search_host):
    host, ids = search_host
    assert found(host, ROOM, "deploy") == ["typo in the deploy note, fixed", "DEPLOY rollback plan",
                                           "The deploy is Friday"]
    assert found(host, ROOM, "FRIDAY") == ["friday lunch at noon?", "The deploy is Friday"]  # ASCII case folded
    assert found(host, ROOM, "deploy friday") == ["The deploy is Friday"]  # every word
    assert found(host, ROOM, "teh") == []  # edited away
    assert found(host, ROOM, "secret") == []  # deleted
    assert found(host, ROOM, "grüße") == ["Grüße aus Köln"]
    assert found(host, ROOM, "Köln!") == ["Grüße aus Köln"]
    assert found(host, ROOM, "deplo") == []  # words, not prefixes
    page = search(host, ROOM, "deploy", limit=2).json()
    assert [m["text"] for m in page["messages"]] == ["typo in the deploy note, fixed", "DEPLOY rollback plan"]
    assert page["next_before"] == ids[4] and page["q"] == "deploy"
    rest = search(host, ROOM, "deploy", limit=2, before=page["next_before"]).json()
    assert [m["text"] for m in rest["messages"]] == ["The deploy is Friday"] and rest["next_before"] is None
    edited = search(host, ROOM, "fixed").json()["messages"][0]
    assert edited["id"] == ids[5] and edited["edited"] is True


def test_hostile_queries_are_words_or_a_clear_error(search_host):
    host, _ = search_host
    assert search(host, ROOM, ".*").status == 400  # no word in it: refused, never a regex
    assert search(host, ROOM, "^(a|b)+$").status == 400  # one-letter ASCII words are not words
    assert found(host, ROOM, "^(deploy|friday)+$") == ["The deploy is Friday"]  # two words, both required
    assert found(host, ROOM, "$where") == ["regex chars .* and $where stay words"]  # the word "where"
    assert found(host, ROOM, "{\"$ne\": null}") == []  # the words "ne", "null"
    for q, why in (("", "no word"), ("?!", "no word"), ("x" * 600, "longer than"),
                   (" ".join(f"w{i}" for i in range(9)), "more than 8")):
        resp = search(host, ROOM, q)
        assert resp.status == 400 and why in resp.json()["error"], (q[:20], resp.body)
    assert host.get(f"/api/rooms/{ROOM}/search", headers={"Authorization": f"Bearer {token()}"}).status == 400
    assert host.get(f"/api/rooms/{ROOM}/search?q=deploy").status == 401
    # A private room: members only (u1 is not one; u2 owns it, but has no membership record: also refused).
    resp = search(host, SECRET_ROOM, "deploy")
    assert resp.status == 403


def test_websocket_search_answers_like_rest_and_refuses_bad_fields(search_host):
    host, _ = search_host
    with connect(f"{host.ws_url}/?user={oid(1)}", open_timeout=10, max_size=None) as ws:
        ws.send(json.dumps({"type": "search", "room": ROOM, "q": "deploy", "ref": "s1"}))
        got = json.loads(ws.recv(timeout=10))
        assert got["type"] == "search" and got["ref"] == "s1" and got["q"] == "deploy"
        assert got["messages"] == search(host, ROOM, "deploy").json()["messages"]
        for frame, code in (({"type": "search", "room": ROOM, "q": {"$ne": 1}}, "bad_field"),
                            ({"type": "search", "room": ROOM}, "bad_field"),
                            ({"type": "search", "room": ROOM, "q": "*"}, "bad_query"),
                            ({"type": "search", "room": ROOM, "q": "\U0001F600" * 5000}, "bad_query"),
                            ({"type": "search", "q": "deploy"}, "bad_field"),
                            ({"type": "search", "room": SECRET_ROOM, "q": "deploy"}, "not_member")):
            ws.send(json.dumps({**frame, "ref": "x"}))
            err = json.loads(ws.recv(timeout=10))
            assert (err["type"], err["code"]) == ("error", code), (frame, err)
