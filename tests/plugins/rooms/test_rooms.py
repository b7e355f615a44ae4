"""The rooms plugin (docs/rooms.md): private and direct rooms with members
and roles, enforced on every path that reveals or writes room data, on two
aurora-host replicas sharing a real Redis and a real FerretDB.

Users are documents in `users` (auth's collection) and connect with HS256
tokens, as a product's backend would issue them."""

from __future__ import annotations

import json
import time
import uuid

import pymongo
import pytest
from bson import ObjectId
from websockets.sync.client import connect

from aurora_host import AuroraHost, http_request
from rooms_support import BUILD, SECRET, TIMEOUT, Client, plugin, token


@pytest.fixture(scope="module")
def world(redis_server, mongo_server, tmp_path_factory):
    """Two replicas (auth, rooms, chat, ingest with history) and a user factory."""
    db = f"rooms_{uuid.uuid4().hex[:8]}"
    mongo = pymongo.MongoClient(mongo_server.url(db), serverSelectionTimeoutMS=5000)[db]
    stream = f"rooms:stream:{uuid.uuid4().hex[:6]}"
    prefix = f"rm{uuid.uuid4().hex[:6]}:"
    cfg = {"log": {"level": "info", "format": "json"},
           "redis": {"url": redis_server.url}, "mongo": {"url": mongo_server.url(db)}, "jwt": {"secret": SECRET},
           "plugins": [{"name": "auth", "path": plugin("auth"), "config": {"redis_prefix": prefix + "auth:"}},
                       {"name": "rooms", "path": plugin("rooms"),
                        "config": {"redis_prefix": prefix, "create_max_per_hour": 6}},
                       {"name": "chat", "path": plugin("chat"), "config": {"stream": stream, "room_moderators": True}},
                       {"name": "ingest", "path": plugin("ingest"),
                        "config": {"stream": stream, "history": True, "workers": 1}}]}
    hosts = [AuroraHost.start(BUILD / "host" / "aurora-host", tmp_path_factory.mktemp(f"rooms{i}"), cfg)
             for i in range(2)]
    for h in hosts:
        deadline = time.monotonic() + TIMEOUT
        while h.get("/ready").status != 200:
            assert time.monotonic() < deadline, "replica not ready"
            time.sleep(0.02)  # polling /ready, bounded

    def user(name: str) -> dict:
        oid = ObjectId()
        uname = f"{name}{uuid.uuid4().hex[:6]}"
        mongo["users"].insert_one({"_id": oid, "username": uname, "passwordHash": "x"})
        return {"id": str(oid), "name": uname}

    yield hosts, user, mongo
    stopped = [h.stop() for h in hosts]  # a sanitizer's report makes the exit code non-zero
    assert stopped == [(0, False), (0, False)], [h.stderr_tail() for h in hosts]


def room_name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def send_text(c: Client, room: str, text: str) -> str:
    return c.ok(type="message", room=room, text=text)["id"]


def test_a_non_member_reaches_a_private_room_by_no_path(world):
    (a, b), user, mongo = world
    owner, member, outsider = user("olga"), user("mike"), user("nina")
    o, m, x = Client(a, owner), Client(b, member), Client(b, outsider)
    room = room_name("secret")
    created = o.ok(type="room_create", room=room, visibility="private", title="Secret", topic="plans")
    assert (created["room"], created["roomType"], created["role"]) == (room, "private", "owner")
    o.ok(type="room_invite", room=room, username=member["name"])
    o.ok(type="join", room=room)
    m.ok(type="join", room=room)
    first = send_text(o, room, "for members only")
    assert m.wait(lambda f: f.get("type") == "message" and f.get("id") == first, "the member's copy")["text"]

    # Every path, over WebSocket: refused, and nothing of the room shows.
    x.refused("not_member", type="join", room=room)
    x.refused("not_member", type="resume", room=room, since="0-0")
    x.refused("not_member", type="history", room=room)
    x.refused("not_member", type="message", room=room, text="let me in")
    x.refused("not_member", type="presence", room=room)
    x.refused("not_member", type="typing", room=room)
    x.refused("not_member", type="read", room=room, id=first)
    x.refused("not_member", type="room_invite", room=room, username=outsider["name"])
    x.no_message(room, 0.3)
    # REST history: 403 for the outsider, 200 for the member.
    url = f"/api/rooms/{room}/messages"
    bearer = {"Authorization": "Bearer " + token(outsider)}
    assert http_request(b.port, url, headers=bearer).status == 403
    bearer_m = {"Authorization": "Bearer " + token(member)}
    deadline = time.monotonic() + TIMEOUT
    while True:  # ingest stores the message shortly after it was sent
        got = http_request(b.port, url, headers=bearer_m)
        assert got.status == 200, got.body
        if json.loads(got.body)["messages"]:
            break
        assert time.monotonic() < deadline, "the message never reached the history"
        time.sleep(0.05)  # polling MongoDB for ingest's progress, bounded
    assert json.loads(got.body)["messages"][0]["text"] == "for members only"
    assert m.ok(type="history", room=room)["messages"][0]["id"] == first
    # message, presence, typing and read need chat's membership, which needs
    # the join refused above. The outsider's attempts changed nothing.
    assert {r["room"] for r in x.ok(type="rooms")["rooms"]} == set()
    assert mongo["room_members"].count_documents({"roomId": room}) == 2
    for c in (o, m, x):
        c.close()


def test_a_removed_member_stops_receiving_on_both_replicas_within_a_second(world):
    (a, b), user, mongo = world
    owner, member = user("pat"), user("quin")
    o = Client(a, owner)
    here, there = Client(a, member), Client(b, member)  # one user, a connection on each replica
    room = room_name("team")
    o.ok(type="room_create", room=room, visibility="private")
    o.ok(type="room_invite", room=room, username=member["name"])
    for c in (o, here, there):
        c.ok(type="join", room=room)
    before = send_text(o, room, "still in")
    for c in (here, there):
        c.wait(lambda f: f.get("type") == "message" and f.get("id") == before, "the message before the removal")

    t0 = time.monotonic()
    o.ok(type="room_remove", room=room, username=member["name"])
    for c in (here, there):
        ev = c.wait(lambda f: f.get("type") == "member_removed" and f.get("room") == room, "member_removed", 1.0)
        assert ev["userId"] == member["id"]
    took = time.monotonic() - t0
    assert took < 1.0, took
    after = send_text(o, room, "not for you")
    for c in (here, there):
        c.no_message(room, 0.5)
        c.refused("not_member", type="message", room=room, text="am I still here?")
        c.refused("not_member", type="join", room=room)
    assert mongo["room_members"].count_documents({"roomId": room}) == 1
    assert after
    for c in (o, here, there):
        c.close()


def test_one_direct_room_per_pair_whatever_the_order(world):
    (a, b), user, mongo = world
    u1, u2, u3 = user("rae"), user("sol"), user("tom")
    c1, c2, c3 = Client(a, u1), Client(b, u2), Client(b, u3)
    dm = c1.ok(type="dm_open", username=u2["name"])
    assert dm["roomType"] == "direct" and dm["room"].startswith("dm:")
    assert {m["user"] for m in dm["members"]} == {u1["name"], u2["name"]}  # who it is with, for a client
    added = c2.wait(lambda f: f.get("type") == "member_added" and f.get("room") == dm["room"], "member_added")
    assert added["userId"] == u2["id"]
    assert c2.ok(type="dm_open", username=u1["name"])["room"] == dm["room"]
    assert c1.ok(type="dm_open", username=u2["name"])["room"] == dm["room"]  # again: the same room
    assert mongo["rooms"].count_documents({"_id": dm["room"]}) == 1
    assert mongo["room_members"].count_documents({"roomId": dm["room"]}) == 2
    c1.ok(type="join", room=dm["room"])
    c2.ok(type="join", room=dm["room"])
    mid = send_text(c2, dm["room"], "hi")
    c1.wait(lambda f: f.get("type") == "message" and f.get("id") == mid, "the DM")
    c3.refused("not_member", type="join", room=dm["room"])
    c3.refused("dm_self", type="dm_open", username=u3["name"])
    c3.refused("no_such_user", type="dm_open", username="nobody-" + uuid.uuid4().hex[:6])
    c1.refused("forbidden", type="room_invite", room=dm["room"], username=u3["name"])
    kinds = {r["room"]: r["roomType"] for r in c1.ok(type="rooms")["rooms"]}
    assert kinds[dm["room"]] == "direct"
    # Leaving a DM sticks: the other user opening it again does not bring
    # the leaver back; the leaver opening it does.
    c2.ok(type="room_leave", room=dm["room"])
    c1.ok(type="dm_open", username=u2["name"])
    assert mongo["room_members"].count_documents({"roomId": dm["room"]}) == 1
    assert c2.ok(type="dm_open", username=u1["name"])["room"] == dm["room"]
    assert mongo["room_members"].count_documents({"roomId": dm["room"]}) == 2
    for c in (c1, c2, c3):
        c.close()


def test_roles_decide_who_invites_removes_promotes_and_leaves(world):
    (a, b), user, _ = world
    own, adm, mem, new = user("uma"), user("vic"), user("wes"), user("xia")
    o, ad, me = Client(a, own), Client(b, adm), Client(a, mem)
    room = room_name("roles")
    o.ok(type="room_create", room=room, visibility="private")
    o.ok(type="room_invite", room=room, username=adm["name"])
    o.ok(type="room_invite", room=room, username=mem["name"])
    me.refused("forbidden", type="room_invite", room=room, username=new["name"])  # a member does not invite
    o.refused("no_such_user", type="room_invite", room=room, username="nobody-" + uuid.uuid4().hex[:6])
    o.refused("no_such_user", type="room_invite", room=room, userId=str(ObjectId()))
    o.refused("no_such_user", type="dm_open", userId="not-a-user-" + uuid.uuid4().hex[:6])
    ad.refused("forbidden", type="room_role", room=room, username=mem["name"], role="admin")  # not the owner
    o.ok(type="room_role", room=room, username=adm["name"], role="admin")
    ad.ok(type="room_invite", room=room, username=new["name"])  # an admin does
    ad.refused("forbidden", type="room_remove", room=room, username=own["name"])  # not the owner
    o.refused("forbidden", type="room_leave", room=room)  # the owner stays
    me.refused("forbidden", type="room_update", room=room, topic="mine now")
    ad.ok(type="room_update", room=room, topic="the plan")
    ad.refused("forbidden", type="room_update", room=room, archived=True)  # the owner archives
    ad.ok(type="room_remove", room=room, username=new["name"])
    me.ok(type="room_leave", room=room)
    me.refused("not_member", type="room_leave", room=room)
    roles = {r["room"]: r["role"] for r in ad.ok(type="rooms")["rooms"]}
    assert roles[room] == "admin"
    # Archived: nobody joins, who was in is out, the history stays readable.
    ad.ok(type="join", room=room)
    o.ok(type="room_update", room=room, archived=True)
    ev = ad.wait(lambda f: f.get("type") == "room_updated" and f.get("room") == room and f.get("archived"),
                 "room_updated (archived)")
    assert ev["topic"] == "the plan"
    ad.refused("not_member", type="message", room=room, text="hello?")
    o.refused("room_archived", type="join", room=room)
    assert ad.ok(type="history", room=room)["type"] == "history"
    ad.refused("room_archived", type="join", room=room)  # reading the history admitted nothing
    for c in (o, ad, me):
        c.close()


def test_owners_and_admins_delete_any_message_members_only_their_own(world):
    (a, b), user, _ = world
    own, adm, mem = user("oona"), user("abe"), user("meg")
    o, ad, me = Client(a, own), Client(b, adm), Client(a, mem)
    room = room_name("moderated")
    o.ok(type="room_create", room=room, visibility="private")
    for u in (adm, mem):
        o.ok(type="room_invite", room=room, username=u["name"])
    o.ok(type="room_role", room=room, username=adm["name"], role="admin")
    for c in (o, ad, me):
        c.ok(type="join", room=room)
    theirs = [send_text(o, room, "owner's"), send_text(ad, room, "admin's"), send_text(me, room, "member's")]
    # A member deletes only its own, whatever it claims to be.
    me.refused("not_author", type="delete", room=room, id=theirs[0], moderator=True)
    me.refused("not_author", type="delete", room=room, id=theirs[1])
    me.ok(type="delete", room=room, id=theirs[2])
    mine = send_text(me, room, "member's second")
    ad.ok(type="delete", room=room, id=mine)       # an admin deletes a member's,
    o.ok(type="delete", room=room, id=theirs[1])   # the owner an admin's,
    ad.refused("not_author", type="edit", room=room, id=theirs[0], text="no")  # editing stays the author's
    ev = me.wait(lambda f: f.get("type") == "delete" and f.get("target") == theirs[1], "the owner's delete")
    assert ev["userId"] == own["id"]
    # Without "room", a delete is not moderated (rooms checks the role of the room it names).
    other = send_text(me, room, "member's third")
    ad.ok(type="join", room=room)
    ad.ws.send(json.dumps({"type": "delete", "id": other, "ref": "noroom"}))  # current room: the last joined
    got = ad.wait(lambda f: f.get("ref") == "noroom", "the answer")
    assert got.get("code") == "not_author", got
    for c in (o, ad, me):
        c.close()


@pytest.mark.parametrize("frame,code", [
    ({"type": "room_create", "room": "bad room", "visibility": "private"}, "bad_room"),
    ({"type": "room_create", "room": "x" * 65, "visibility": "private"}, "bad_room"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "secret"}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}"}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "private", "title": "a\nb"}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "private", "title": ""}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "private", "title": 7}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "private", "topic": "t" * 501}, "bad_field"),
    ({"type": "room_create", "room": "ok-{u}", "visibility": "private", "topic": "bell\u0007"}, "bad_field"),
    ({"type": "room_create", "room": "general", "visibility": "private"}, "reserved_room"),
    ({"type": "room_create", "room": "dm:{u}", "visibility": "private"}, "reserved_room"),
    ({"type": "room_invite", "room": "nowhere-{u}", "username": "x"}, "not_found"),
    ({"type": "room_invite", "room": 5, "username": "x"}, "bad_room"),
    ({"type": "dm_open"}, "bad_field"),
    ({"type": "dm_open", "username": "u" * 65}, "bad_field"),
    ({"type": "room_update", "room": "nowhere-{u}", "topic": "x"}, "not_found"),
])
def test_bad_requests_get_a_clear_error_and_change_nothing(world, frame, code):
    (a, _), user, mongo = world
    c = Client(a, user("yan"))
    u = uuid.uuid4().hex[:8]
    frame = {k: (v.replace("{u}", u) if isinstance(v, str) else v) for k, v in frame.items()}
    before = (mongo["rooms"].count_documents({}), mongo["room_members"].count_documents({}))
    c.refused(code, **frame)
    assert (mongo["rooms"].count_documents({}), mongo["room_members"].count_documents({})) == before
    c.close()


def test_room_creation_is_limited_per_user_per_hour_and_names_are_unique(world):
    (a, _), user, mongo = world
    c, d = Client(a, user("zed")), Client(a, user("amy"))
    rooms = [room_name("mine") for _ in range(7)]
    for r in rooms[:6]:
        c.ok(type="room_create", room=r, visibility="public")
    c.refused("too_many_rooms_created", type="room_create", room=rooms[6], visibility="public")
    assert mongo["rooms"].count_documents({"_id": rooms[6]}) == 0
    d.refused("room_exists", type="room_create", room=rooms[0], visibility="private")
    # A public room: anyone joins, without an invitation.
    d.ok(type="join", room=rooms[0])
    for x in (c, d):
        x.close()


def rest(host: AuroraHost, method: str, path: str, user: dict | None, body=None):
    headers = {"Authorization": "Bearer " + token(user)} if user else {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    got = http_request(host.port, path, method=method, headers=headers, body=data)
    return got.status, (json.loads(got.body) if got.body and method != "HEAD" else None)


def test_the_rest_interface_does_what_the_websocket_requests_do(world):
    (a, b), user, mongo = world
    own, mem = user("bea"), user("cy")
    room = room_name("rest")
    status, got = rest(a, "POST", "/api/rooms", own, {"room": room, "visibility": "private", "title": "REST"})
    assert status == 201 and got["roomType"] == "private" and got["role"] == "owner", got
    # The same request again (a retry) is the same room; someone else's is a conflict.
    assert rest(a, "POST", "/api/rooms", own, {"room": room, "visibility": "private"})[0] == 201
    assert rest(a, "POST", "/api/rooms", mem, {"room": room, "visibility": "private"})[0] == 409
    assert rest(b, "POST", f"/api/rooms/{room}/members", own, {"username": mem["name"]})[0] == 200
    assert rest(b, "POST", f"/api/rooms/{room}/members", mem, {"username": own["name"]})[0] == 403  # a member
    assert rest(a, "PATCH", f"/api/rooms/{room}/members/{mem['id']}", own, {"role": "admin"})[0] == 200
    assert rest(a, "PATCH", f"/api/rooms/{room}", mem, {"topic": "set by the admin"})[0] == 200
    status, listed = rest(b, "GET", "/api/rooms", mem)
    assert status == 200
    mine = {r["room"]: r for r in listed["rooms"]}
    assert (mine[room]["role"], mine[room]["topic"]) == ("admin", "set by the admin")
    assert rest(a, "DELETE", f"/api/rooms/{room}/members/{mem['id']}", own)[0] == 200
    assert rest(a, "GET", "/api/rooms", mem)[1]["rooms"] == []
    assert rest(a, "POST", f"/api/rooms/{room}/leave", own)[0] == 403  # the owner stays
    status, dm = rest(b, "POST", "/api/dms", own, {"username": mem["name"]})
    assert status == 200 and dm["room"].startswith("dm:")
    assert rest(b, "POST", "/api/dms", own, {"username": "nobody-" + uuid.uuid4().hex[:6]})[0] == 404
    # Refusals: no token, a bad token, a body that is not an object, a path that is no request.
    assert rest(a, "GET", "/api/rooms", None)[0] == 401
    assert http_request(a.port, "/api/rooms", headers={"Authorization": "Bearer x.y.z"}).status == 401
    assert rest(a, "POST", "/api/rooms", own, b"[1,2]")[0] == 400
    assert rest(a, "POST", "/api/rooms", own, b"{not json")[0] == 400
    assert rest(a, "POST", f"/api/rooms/{room}/nothing", own, {})[0] == 404
    assert mongo["room_members"].count_documents({"roomId": room}) == 1


def test_every_method_with_and_without_a_body_on_every_route(world):
    """No method, body or missing token makes a room route fail on the server
    side (5xx) or change anything, and the replica stays healthy."""
    (a, _), user, mongo = world
    own, other = user("dee"), user("eli")
    room = room_name("methods")
    assert rest(a, "POST", "/api/rooms", own, {"room": room, "visibility": "private"})[0] == 201
    paths = ["/api/rooms", f"/api/rooms/{room}", f"/api/rooms/{room}/members", f"/api/rooms/{room}/members/{own['id']}",
             f"/api/rooms/{room}/leave", f"/api/rooms/{room}/messages", "/api/dms", "/api/rooms/", "/api/rooms//members"]
    before = (mongo["rooms"].count_documents({}), mongo["room_members"].count_documents({"roomId": room}))
    seen = set()
    for path in paths:
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
            for body in [None, b"{}", b"not json", b'{"role": 5, "username": [], "archived": "yes"}']:
                for who in [None, other]:
                    status, _ = rest(a, method, path, who, body)
                    assert status < 500, (method, path, body, who and "token", status)
                    if who is None:
                        assert status in (401, 404, 405), (method, path, status)
                    seen.add(status)
    assert (mongo["rooms"].count_documents({}), mongo["room_members"].count_documents({"roomId": room})) == before
    assert a.get("/health").status == 200
    assert {400, 401, 403, 404, 405} <= seen, seen


def test_the_room_list_has_unread_counts_and_the_last_message_newest_first(world):
    (a, b), user, mongo = world
    me, friend = user("fay"), user("gus")
    c, f = Client(a, me), Client(b, friend)
    quiet, busy = room_name("quiet"), room_name("busy")
    for r in (busy, quiet):  # quiet is the newer membership: only activity puts busy first
        c.ok(type="room_create", room=r, visibility="private")
        c.ok(type="room_invite", room=r, username=friend["name"])
        f.ok(type="join", room=r)
    send_text(f, quiet, "old news")
    ids = [send_text(f, busy, f"news {n}") for n in range(3)]
    c.ok(type="join", room=busy)
    send_text(c, busy, "my own reply")  # the reader's own messages are not unread

    def listed() -> dict:
        return {r["room"]: r for r in c.ok(type="rooms")["rooms"]}

    deadline = time.monotonic() + TIMEOUT
    while listed()[busy].get("last", {}).get("text") != "my own reply":
        assert time.monotonic() < deadline, (listed(), list(mongo["messages"].find({"roomId": busy}, {"_id": 0, "text": 1, "createdAt": 1})))
        time.sleep(0.05)  # polling for ingest to store the messages, bounded
    rooms = c.ok(type="rooms")["rooms"]
    assert [r["room"] for r in rooms][:2] == [busy, quiet]  # the busiest first
    got = {r["room"]: r for r in rooms}
    assert (got[busy]["unread"], got[quiet]["unread"]) == (3, 1)
    assert got[quiet]["last"]["text"] == "old news" and got[quiet]["last"]["user"] == friend["name"]
    assert c.ok(type="read", room=busy, id=ids[-1])["read"] == ids[-1]
    assert listed()[busy]["unread"] == 0
    for x in (c, f):
        x.close()


def test_a_room_name_cannot_be_held_before_the_room_exists(world):
    """Sitting in a name before its owner creates it private (or opens the
    direct room) gets nothing of the room: a dm: name nobody opened cannot be
    joined, and whoever sat in a plain name is taken out at creation."""
    (a, b), user, _ = world
    owner, friend, squatter = user("hal"), user("ivy"), user("jon")
    o, f, sq = Client(a, owner), Client(b, friend), Client(b, squatter)
    room = room_name("later")
    sq.ok(type="join", room=room)  # nobody's yet: public
    o.ok(type="room_create", room=room, visibility="private")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the cut reaches the other replica within the bound
        if sq.ask(type="message", room=room, text="mine")["type"] == "error":
            break
        time.sleep(0.05)  # polling for the cut, bounded
    sq.refused("not_member", type="message", room=room, text="still mine?")
    sq.refused("not_member", type="join", room=room)
    o.ok(type="join", room=room)
    send_text(o, room, "private now")
    sq.no_message(room, 0.3)
    # The direct room of two users is refused before it is opened, and after.
    dm = o.ok(type="dm_open", username=friend["name"])["room"]
    sq.refused("not_member", type="join", room=dm)
    for c in (o, f, sq):
        c.close()


def test_an_event_missed_while_unsubscribed_is_caught_up_on_resubscribe(world, redis_server):
    """A removal whose event a replica never heard (written straight to
    MongoDB, the cache dropped, no event) takes effect when its event
    subscription comes back: every admission is checked again."""
    import redis as redis_py
    (a, b), user, mongo = world
    owner, member = user("kim"), user("lee")
    o, m = Client(a, owner), Client(b, member)
    room = room_name("missed")
    o.ok(type="room_create", room=room, visibility="private")
    o.ok(type="room_invite", room=room, username=member["name"])
    m.ok(type="join", room=room)
    mongo["room_members"].delete_many({"roomId": room, "userId": member["id"]})
    r = redis_py.Redis.from_url(redis_server.url)
    for key in r.scan_iter(match=f"*members:{room}"):
        r.delete(key)
    assert m.ask(type="message", room=room, text="nobody told me")["type"] == "ack"  # not cut yet: no event
    r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # every subscription drops and comes back
    deadline = time.monotonic() + TIMEOUT
    while m.ask(type="message", room=room, text="still here?")["type"] != "error":
        assert time.monotonic() < deadline, "the resubscribed replica never checked again"
        time.sleep(0.05)  # polling for the recheck, bounded
    m.refused("not_member", type="join", room=room)
    for c in (o, m):
        c.close()


def test_hostile_clients_closing_mid_check_and_flooding_get_nothing(world):
    """Connections that close while their check runs on a worker, and one
    that floods joins of a private room it is not in: no join is let
    through, every refused frame is answered or the flood is closed, and the
    replicas stay healthy (the fixture checks both exit 0: sanitizer legs)."""
    (a, b), user, _ = world
    owner, member, outsider = user("ora"), user("pia"), user("rex")
    o = Client(a, owner)
    room = room_name("siege")
    o.ok(type="room_create", room=room, visibility="private")
    o.ok(type="room_invite", room=room, username=member["name"])
    for i in range(8):  # the member joins and leaves at once, 8 times (auth caps 10 connections a user)
        ws = connect(f"{(a, b)[i % 2].ws_url}/?token={token(member)}", open_timeout=TIMEOUT).__enter__()
        ws.send(json.dumps({"type": "join", "room": room, "ref": "j"}))
        ws.send(json.dumps({"type": "rooms", "ref": "l"}))
        ws.close()
    x = Client(b, outsider)
    for n in range(300):
        try:
            x.ws.send(json.dumps({"type": "join", "room": room, "ref": f"f{n}"}))
        except Exception:  # closed by the host's flood guard: that is an answer too
            break
    answers: list[dict] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and len(answers) < 300:
            answers.append(json.loads(x.ws.recv(timeout=2)))
    except Exception:  # no more frames, or closed
        pass
    # Past the join budget the host answers rate_limited, and closes a flood
    # after those answers (not instead of them).
    assert answers, "the flood got no answer at all"
    assert not any(f.get("type") == "joined" for f in answers), [f for f in answers if f.get("type") == "joined"]
    codes = {f.get("code") or f.get("type") for f in answers if f.get("ref", "").startswith("f")}
    assert codes <= {"not_member", "busy", "rate_limited"}, codes
    for h in (a, b):
        assert h.get("/health").status == 200
    m = Client(a, member)  # the member still gets in
    m.ok(type="join", room=room)
    for c in (o, m):
        c.close()
