"""Changes to messages (docs/protocol.md, "Changes to messages"): edit,
delete and reactions through the chat plugin on two replicas, live on both,
replayed by resume, folded into MongoDB by ingest and returned by history in
their latest state; each change stored exactly once, also when ingest
workers are killed (kill -9) during a burst of edits and reactions; and every
bad request refused with nothing stored. Real Redis, real FerretDB (both
backends); identities from the probe fixture (?user=<ObjectId>)."""

from __future__ import annotations

import json
import secrets
import signal
import time

import pytest
from websockets.sync.client import connect

from aurora_host import AuroraHost
from frame_waiter import FrameWaiter
from ingest_support import CHAT, PROBE, Ctx, oid, require, wait_for, wait_ready

TIMEOUT = 10.0
FAST = {"claim_idle_ms": 1000, "claim_interval_ms": 250, "block_ms": 500, "backoff_initial_ms": 50,
        "backoff_max_ms": 500, "mongo_timeout_ms": 1000}
LIMITS = {"frames_per_s": 1000000, "frames_burst": 1000000, "max_pending_per_conn": 1 << 20,
          "send_queue_max_frames": 100000, "send_queue_max_bytes": 64 << 20,
          "frame_budgets": {t: {"per_s": 0, "burst": 1} for t in ("join", "history", "edit", "delete", "react")}}
ALICE, BOB, CAROL = oid(101), oid(102), oid(103)


class Client(FrameWaiter):
    def __init__(self, host: AuroraHost, user: str):
        self.ws = connect(f"{host.ws_url}/?user={user}", open_timeout=TIMEOUT, max_size=None,
                          ping_interval=None, max_queue=None).__enter__()
        self.frames: list[dict] = []
        self.n = 0

    def send(self, **frame) -> None:
        self.ws.send(json.dumps(frame))

    def ask(self, **frame) -> dict:
        """Sends with a fresh ref; its answer (ack or error)."""
        self.n += 1
        ref = f"r{self.n}-{secrets.token_hex(3)}"
        self.send(ref=ref, **frame)
        return self.wait(lambda f: f.get("ref") == ref and f.get("type") in ("ack", "error", "joined", "resumed"),
                         f"the answer to {frame}")

    def wait(self, pred, what: str, timeout: float = TIMEOUT) -> dict:
        return FrameWaiter.wait(self, pred, what, timeout)

    def event(self, type_: str, target: str, **match) -> dict:
        return self.wait(lambda f: f.get("type") == type_ and f.get("target") == target and
                         all(f.get(k) == v for k, v in match.items()), f"{type_} of {target} {match}")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def hosts(start_host):
    """start_host, and every host not killed on purpose must stop cleanly (a
    sanitizer's report makes the exit code non-zero)."""
    started: list[AuroraHost] = []

    def start(config: dict, name: str = "") -> AuroraHost:
        h = start_host(config, name)
        started.append(h)
        return h

    yield start
    for h in started:
        if h.proc.poll() == -signal.SIGKILL:
            continue
        assert h.stop() == (0, False), h.stderr_tail()


def chat_plugin(ctx: Ctx, **settings) -> dict:
    return {"name": "chat", "path": require(CHAT),
            "config": {"stream": ctx.stream, "presence_ttl_s": 3, "presence_refresh_s": 1, **settings}}


def replica(ctx: Ctx, start_host, name: str, ingest: dict | None = None, **chat) -> AuroraHost:
    plugins = [{"name": "probe", "path": require(PROBE)}, chat_plugin(ctx, **chat)]
    if ingest is not None:
        plugins.append(ctx.ingest_plugin(**ingest))
    h = start_host(ctx.host_config(plugins, limits=LIMITS), name)
    wait_ready(h)
    return h


def in_room(host: AuroraHost, user: str, room: str) -> Client:
    c = Client(host, user)
    assert c.ask(type="join", room=room)["type"] == "joined"
    return c


def history(c: Client, room: str) -> list[dict]:
    c.send(type="history", room=room, limit=100, ref="h")
    return c.wait(lambda f: f.get("type") == "history" and f.get("ref") == "h", "history")["messages"]


def unique_room() -> str:
    return "changes-" + secrets.token_hex(4)


def test_edit_delete_and_reactions_live_on_both_replicas_resumed_and_in_history(ctx, hosts):
    room = unique_room()
    a = replica(ctx, hosts, "a", ingest={"workers": 1, "history": True, **FAST})
    b = replica(ctx, hosts, "b")
    alice, bob = in_room(a, ALICE, room), in_room(b, BOB, room)
    ids = [alice.ask(type="message", room=room, text=f"m{i}")["id"] for i in range(3)]
    m1, m2, m3 = ids

    ack = alice.ask(type="edit", room=room, id=m1, text="m1, edited")
    assert ack["type"] == "ack" and ack["target"] == m1 and ack["room"] == room, ack
    for c in (alice, bob):
        e = c.event("edit", m1)
        assert (e["id"], e["text"], e["userId"], e["room"]) == (ack["id"], "m1, edited", ALICE, room)

    # Only the author edits or deletes.
    assert bob.ask(type="edit", room=room, id=m1, text="mine now")["code"] == "not_author"
    assert bob.ask(type="delete", room=room, id=m2)["code"] == "not_author"

    # Reactions: anyone in the room, once per user and emoji.
    thumbs, heart = "\U0001F44D", "\u2764\ufe0f"
    assert bob.ask(type="react", room=room, id=m1, emoji=thumbs)["type"] == "ack"
    for c in (alice, bob):
        assert c.event("reaction", m1, op="add", emoji=thumbs)["userId"] == BOB
    again = bob.ask(type="react", room=room, id=m1, emoji=thumbs)
    assert again.get("unchanged") is True and "id" not in again, again
    alice.ask(type="react", room=room, id=m1, emoji=thumbs)
    alice.ask(type="react", room=room, id=m1, emoji=heart)
    assert bob.ask(type="react", room=room, id=m1, emoji=thumbs, op="remove")["type"] == "ack"
    assert bob.ask(type="react", room=room, id=m1, emoji=thumbs, op="remove").get("unchanged") is True
    for c in (alice, bob):
        c.event("reaction", m1, op="remove", emoji=thumbs, userId=BOB)

    # Delete: a tombstone; nothing changes it afterwards.
    dack = alice.ask(type="delete", room=room, id=m2)
    assert dack["type"] == "ack"
    for c in (alice, bob):
        assert c.event("delete", m2)["id"] == dack["id"]
    assert alice.ask(type="edit", room=room, id=m2, text="back")["code"] == "deleted"
    assert bob.ask(type="react", room=room, id=m2, emoji=heart)["code"] == "deleted"
    assert alice.ask(type="delete", room=room, id=m2)["code"] == "deleted"

    # A late client resumes from before the first message: every message and
    # change, in stream order.
    carol = Client(b, CAROL)
    done = carol.ask(type="resume", room=room, since="0-0")
    assert done["type"] == "resumed" and done["complete"] is True
    replay = [f for f in carol.frames if f.get("room") == room and f.get("type") in
              ("message", "edit", "delete", "reaction")]
    kinds = [(f["type"], f.get("target"), f.get("op")) for f in replay]
    assert kinds == [("message", None, None)] * 3 + [
        ("edit", m1, None), ("reaction", m1, "add"), ("reaction", m1, "add"), ("reaction", m1, "add"),
        ("reaction", m1, "remove"), ("delete", m2, None)], kinds
    assert [f["id"] for f in replay] == sorted((f["id"] for f in replay), key=lambda s: tuple(map(int, s.split("-"))))
    assert done["count"] == len(replay)

    # History: the latest state, from MongoDB.
    wait_for(ctx.drained, "ingest to drain", timeout=30, interval=0.1)
    page = {m["id"]: m for m in history(alice, room)}  # ingest serves history on replica a
    assert page[m1]["text"] == "m1, edited" and page[m1]["edited"] is True
    assert page[m1]["editedAt"] == int(ack["id"].split("-")[0])
    assert page[m1]["reactions"] == [{"emoji": thumbs, "count": 1, "userIds": [ALICE]},
                                     {"emoji": heart, "count": 1, "userIds": [ALICE]}]
    assert page[m2]["deleted"] is True and page[m2]["text"] == "" and "reactions" not in page[m2]
    assert page[m3] == {"type": "message", "id": m3, "room": room, "user": f"user-{ALICE}", "userId": ALICE,
                        "text": "m2", "ts": int(m3.split("-")[0])}
    # MongoDB: each change once, the message documents folded.
    changes = list(ctx.mongo[ctx.db]["message_changes"].find({"roomId": room}))
    assert len(changes) == 6 and len({c["streamId"] for c in changes}) == 6
    doc = ctx.coll.find_one({"streamId": m2})
    assert (doc["status"], doc["text"], str(doc["deletedBy"])) == ("deleted", "", ALICE)
    for c in (alice, bob, carol):
        c.close()


BAD = [
    ({"type": "edit"}, "bad_field"),
    ({"type": "edit", "id": "nope", "text": "x"}, "bad_field"),
    ({"type": "edit", "id": 5, "text": "x"}, "bad_field"),
    ({"type": "edit", "id": "{M}", "text": 7}, "bad_field"),
    ({"type": "edit", "id": "{M}", "text": ""}, "empty"),
    ({"type": "edit", "id": "{M}", "text": "x" * 4001}, "too_long"),
    ({"type": "delete", "id": ["{M}"]}, "bad_field"),
    ({"type": "react", "id": "{M}"}, "bad_field"),
    ({"type": "react", "id": "{M}", "emoji": "\U0001F600" * 5000}, "bad_emoji"),
    ({"type": "react", "id": "{M}", "emoji": "a"}, "bad_emoji"),
    ({"type": "react", "id": "{M}", "emoji": "\U0001F600\U0001F600"}, "bad_emoji"),
    ({"type": "react", "id": "{M}", "emoji": ".*"}, "bad_emoji"),
    ({"type": "react", "id": "{M}", "emoji": "\u200d"}, "bad_emoji"),
    ({"type": "react", "id": "{M}", "emoji": "\U0001F44D", "op": "toggle"}, "bad_field"),
    ({"type": "react", "id": "{M}", "emoji": "\U0001F44D", "op": 1}, "bad_field"),
    ({"type": "edit", "id": "1-0", "text": "x"}, "not_found"),
    ({"type": "edit", "id": "{OTHER}", "text": "x"}, "not_found"),   # a message of another room
    ({"type": "react", "id": "{CHANGE}", "emoji": "\U0001F44D"}, "not_found"),  # a change, not a message
    ({"type": "edit", "id": "{M}", "text": "x", "room": "not-joined"}, "not_member"),
]


def test_bad_changes_are_refused_and_store_nothing(ctx, hosts):
    room, other = unique_room(), unique_room()
    a = replica(ctx, hosts, "a")
    alice = in_room(a, ALICE, room)
    alice.ask(type="join", room=other)
    m = alice.ask(type="message", room=room, text="target")["id"]
    elsewhere = alice.ask(type="message", room=other, text="elsewhere")["id"]
    change = alice.ask(type="edit", room=room, id=m, text="edited")["id"]
    before = ctx.r.xlen(ctx.stream)
    subs = {"{M}": m, "{OTHER}": elsewhere, "{CHANGE}": change}
    for frame, code in BAD:
        text = json.dumps(frame)
        for k, v in subs.items():
            text = text.replace(k, v)
        frame = json.loads(text)
        frame.setdefault("room", room)
        answer = alice.ask(**frame)
        assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
        assert answer["message"]
    assert ctx.r.xlen(ctx.stream) == before
    # A JSON-valid but forged moderator flag, without room_moderators: ignored.
    bob = in_room(a, BOB, room)
    assert bob.ask(type="delete", room=room, id=m, moderator=True)["code"] == "not_author"
    assert ctx.r.xlen(ctx.stream) == before
    alice.close()
    bob.close()


def test_reactions_are_bounded_per_message(ctx, hosts):
    room = unique_room()
    a = replica(ctx, hosts, "a", max_reaction_emojis=2, max_reactions=3)
    alice, bob = in_room(a, ALICE, room), in_room(a, BOB, room)
    m = alice.ask(type="message", room=room, text="react to me")["id"]
    assert alice.ask(type="react", room=room, id=m, emoji="\U0001F600")["type"] == "ack"
    assert alice.ask(type="react", room=room, id=m, emoji="\U0001F601")["type"] == "ack"
    assert alice.ask(type="react", room=room, id=m, emoji="\U0001F602")["code"] == "too_many_reactions"
    assert bob.ask(type="react", room=room, id=m, emoji="\U0001F600")["type"] == "ack"  # an emoji already there
    assert bob.ask(type="react", room=room, id=m, emoji="\U0001F601")["code"] == "too_many_reactions"  # 4th
    # A removal makes room again.
    assert alice.ask(type="react", room=room, id=m, emoji="\U0001F601", op="remove")["type"] == "ack"
    assert bob.ask(type="react", room=room, id=m, emoji="\U0001F601")["type"] == "ack"
    alice.close()
    bob.close()


def expected_state(entries: list[tuple[str, dict]]) -> dict[str, dict]:
    """The fold of the stream's changes, per message id: what MongoDB must hold."""
    state: dict[str, dict] = {}
    for _, f in entries:
        if "kind" not in f:
            continue
        s = state.setdefault(f["target"], {"text": None, "deleted": False, "reactions": {}})
        if s["deleted"]:
            continue
        if f["kind"] == "edit":
            s["text"] = f["text"]
        elif f["kind"] == "delete":
            s.update(deleted=True, text="", reactions={})
        else:
            users = s["reactions"].setdefault(f["emoji"], [])
            if f["op"] == "add" and f["userId"] not in users:
                users.append(f["userId"])
            elif f["op"] == "remove" and f["userId"] in users:
                users.remove(f["userId"])
            if not users:
                del s["reactions"][f["emoji"]]
    return state


def victim_pending(ctx: Ctx) -> int:
    try:
        return sum(c["pending"] for c in ctx.r.xinfo_consumers(ctx.stream, "mongo_workers")
                   if c["name"].startswith("victim"))
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return 0


def test_kill_9_an_ingest_worker_during_a_burst_of_edits_and_reactions(ctx, hosts):
    """200 messages, then a burst of edits, reactions and deletes from two
    users on two replicas while one of the two ingest workers is killed
    (kill -9) five times, each time holding a batch: every change is stored
    once, every message folded as the stream says."""
    room = unique_room()
    a = replica(ctx, hosts, "a", ingest={"workers": 1, "consumer_name": "steady", **FAST})
    b = replica(ctx, hosts, "b")
    victim_cfg = ctx.host_config([ctx.ingest_plugin(workers=1, consumer_name="victim", batch=50, **FAST)])
    victim = hosts(victim_cfg, "victim")
    alice, bob = in_room(a, ALICE, room), in_room(b, BOB, room)
    mine = [alice.ask(type="message", room=room, text=f"a{i}")["id"] for i in range(100)]
    theirs = [bob.ask(type="message", room=room, text=f"b{i}")["id"] for i in range(100)]
    emojis = ["\U0001F44D", "\u2764\ufe0f", "\U0001F602", "\U0001F1EB\U0001F1F7"]
    rng = __import__("random").Random(7)
    def send_one(step: int) -> None:
        who, own, other = (alice, mine, theirs) if step % 2 else (bob, theirs, mine)
        pick = rng.random()
        ref = f"{room}-k{step}"  # unique per run: each store backend runs this on one Redis
        if pick < 0.35:
            who.send(type="edit", room=room, id=rng.choice(own), text=f"edit {step}", ref=ref)
        elif pick < 0.40:
            who.send(type="delete", room=room, id=rng.choice(own), ref=ref)
        else:
            who.send(type="react", room=room, id=rng.choice(own + other), emoji=rng.choice(emojis),
                     op="add" if rng.random() < 0.7 else "remove", ref=ref)

    # Five rounds of at least 200 changes: they keep coming until the victim
    # holds delivered, unacknowledged entries (or 600 were sent), then it is
    # killed, mid-batch.
    step = kills = mid_batch = 0
    while kills < 5:
        wait_ready(victim)  # consuming before this round's changes arrive
        for n in range(600):
            send_one(step)
            step += 1
            if n >= 200 and victim_pending(ctx) > 0:
                mid_batch += 1
                break
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        kills += 1
        victim = hosts(victim_cfg, "victim")
    # Every request answered (an ack, or deleted/... for a change after a delete).
    for c, parity in ((alice, 1), (bob, 0)):
        for k in range(parity, step, 2):
            c.wait(lambda f, r=f"{room}-k{k}": f.get("ref") == r and f.get("type") in ("ack", "error"), f"answer k{k}")
    assert mid_batch >= 4, f"only {mid_batch} of 5 kills hit a batch in flight"
    wait_for(ctx.drained, "ingest to drain", timeout=90, interval=0.25)
    entries = ctx.r.xrange(ctx.stream)
    change_ids = [i for i, f in entries if "kind" in f]
    assert len(change_ids) > 600  # of 1,000 or more sent (changes of deleted messages are refused)
    stored = [d["streamId"] for d in ctx.mongo[ctx.db]["message_changes"].find({}, {"streamId": 1})]
    assert sorted(stored) == sorted(change_ids), "every change stored exactly once"
    assert ctx.coll.count_documents({}) == 200
    want = expected_state(entries)
    for mid, s in want.items():
        doc = ctx.coll.find_one({"streamId": mid})
        if s["deleted"]:
            assert (doc["status"], doc["text"], doc["reactions"]) == ("deleted", "", []), mid
            continue
        if s["text"] is not None:
            assert (doc["status"], doc["text"]) == ("edited", s["text"]), mid
        got = {r["emoji"]: r["userIds"] for r in doc.get("reactions", [])}
        assert got == s["reactions"], mid
        assert all(r["count"] == len(r["userIds"]) for r in doc.get("reactions", []))
    alice.close()
    bob.close()


def test_a_change_read_before_its_message_is_folded_once_the_message_is_stored(ctx, hosts):
    """A worker dies holding a message; another reads an edit of it first.
    The edit is stored but stays pending (its message is not there to fold
    onto) until the message is claimed and stored; then it is folded."""
    room = unique_room()
    ctx.r.xgroup_create(ctx.stream, "mongo_workers", id="0", mkstream=True)
    m = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "text": "original", "username": "alice"})
    # A consumer that reads the message and dies without acknowledging it.
    held = ctx.r.xreadgroup("mongo_workers", "dead-worker", {ctx.stream: ">"}, count=1)
    assert held[0][1][0][0] == m
    e = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "username": "alice", "kind": "edit",
                                "target": m, "text": "edited"})
    host = hosts(ctx.host_config([ctx.ingest_plugin(workers=1, **FAST)]), "ingest")
    wait_ready(host)
    wait_for(lambda: "is not stored yet" in host.stderr_path.read_text(), "the edit to wait for its message",
             timeout=10, interval=0.05)
    wait_for(ctx.drained, "ingest to drain", timeout=30, interval=0.1)
    doc = ctx.coll.find_one({"streamId": m})
    assert (doc["status"], doc["text"], doc["changeKey"]) == ("edited", "edited", f"{int(e.split('-')[0]):016d}-"
                                                                                    f"{int(e.split('-')[1]):020d}")
    assert ctx.mongo[ctx.db]["message_changes"].count_documents({"targetId": m}) == 1


def test_an_older_change_stored_after_a_later_one_was_folded_is_folded_too(ctx, hosts):
    """Two workers: A stores the reaction c2 and folds {c2}; B, behind it,
    stores the edit c1 (older) and folds {c1, c2}, whose last change is the
    same c2. B's fold holds more and must win: the edit is not lost."""
    from bson import ObjectId
    room = unique_room()
    ctx.r.xgroup_create(ctx.stream, "mongo_workers", id="0", mkstream=True)
    m = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "username": "alice", "text": "original"})
    c1 = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "username": "alice", "kind": "edit", "target": m,
                                 "text": "edited"})
    c2 = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": BOB, "username": "bob", "kind": "reaction", "target": m,
                                 "emoji": "\U0001F44D", "op": "add"})
    # Worker A's work, as it left it: m stored, c2 stored and folded alone.
    key = lambda sid: "%016d-%020d" % tuple(int(x) for x in sid.split("-"))  # noqa: E731
    ms = lambda sid: __import__("datetime").datetime.fromtimestamp(int(sid.split("-")[0]) / 1000,  # noqa: E731
                                                                  __import__("datetime").timezone.utc)
    ctx.coll.insert_one({"roomId": room, "userId": ObjectId(ALICE), "username": "alice", "text": "original",
                         "status": "sent", "attachments": [], "createdAt": ms(m), "updatedAt": ms(m), "streamId": m,
                         "reactions": [{"emoji": "\U0001F44D", "count": 1, "userIds": [BOB]}],
                         "changeKey": key(c2), "changeCount": 1})
    ctx.mongo[ctx.db]["message_changes"].insert_one(
        {"roomId": room, "streamId": c2, "targetId": m, "key": key(c2), "kind": "reaction", "userId": ObjectId(BOB),
         "username": "bob", "emoji": "\U0001F44D", "op": "add", "createdAt": ms(c2), "targetAt": ms(m)})
    # The stream as A left it: m and c2 acknowledged; c1 read by B, who died.
    ctx.r.xreadgroup("mongo_workers", "worker-b", {ctx.stream: ">"}, count=3)
    ctx.r.xack(ctx.stream, "mongo_workers", m, c2)
    host = hosts(ctx.host_config([ctx.ingest_plugin(workers=1, **FAST)]), "ingest")  # claims c1 after 1 s
    wait_ready(host)
    wait_for(ctx.drained, "c1 claimed and stored", timeout=20, interval=0.1)
    doc = ctx.coll.find_one({"streamId": m})
    assert (doc["status"], doc["text"], doc["changeCount"]) == ("edited", "edited", 2), doc
    assert doc["reactions"] == [{"emoji": "\U0001F44D", "count": 1, "userIds": [BOB]}]


def test_ids_are_canonical_old_messages_and_anonymous_users_cannot_be_changed(ctx, hosts):
    room = unique_room()
    # A message a day old, written straight into the stream (message_state_ttl_s is 60 below).
    old = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "username": "alice", "text": "yesterday"},
                     id=f"{int(time.time() * 1000) - 86400_000}-0")
    a = replica(ctx, hosts, "a", message_state_ttl_s=60, max_changes=3)
    alice = in_room(a, ALICE, room)
    assert alice.ask(type="edit", room=room, id=old, text="x")["code"] == "too_old"
    m = alice.ask(type="message", room=room, text="now")["id"]
    ms, seq = m.split("-")
    # Another spelling of the same id is the same message: deleted once, deleted for every spelling.
    assert alice.ask(type="delete", room=room, id=f"000{ms}-{seq}")["type"] == "ack"
    assert alice.ask(type="edit", room=room, id=m, text="back")["code"] == "deleted"
    assert ctx.r.keys(f"chat:msg:{room}:*") == [f"chat:msg:{room}:{m}"]
    # A bare <ms> means <ms>-0 (as XRANGE reads it), never "the first of that millisecond".
    m2 = alice.ask(type="message", room=room, text="second")["id"]
    if not m2.endswith("-0"):
        assert alice.ask(type="edit", room=room, id=m2.split("-")[0], text="x")["code"] == "not_found"
    # At most max_changes changes per message (3 here).
    m3 = alice.ask(type="message", room=room, text="third")["id"]
    for i in range(3):
        assert alice.ask(type="edit", room=room, id=m3, text=f"v{i}")["type"] == "ack"
    assert alice.ask(type="react", room=room, id=m3, emoji="\U0001F44D")["code"] == "too_many_changes"
    # A ref is a change's own: the same ref on a message and a change are two requests.
    ref = f"{room}-same"  # unique per run: each store backend runs this on one Redis
    alice.send(type="message", room=room, text="with a ref", ref=ref)
    sent = alice.wait(lambda f: f.get("ref") == ref and f.get("type") == "ack", "ack")
    alice.send(type="react", room=room, id=sent["id"], emoji="\U0001F44D", ref=ref)
    reacted = alice.wait(lambda f: f.get("ref") == ref and f.get("type") == "ack" and "target" in f, "react ack")
    assert reacted["id"] != sent["id"] and "duplicate" not in reacted
    # Anonymous connections (no identity) do not change messages.
    anon = in_room(a, "anon-someone", room)
    assert anon.ask(type="react", room=room, id=sent["id"], emoji="\U0001F44D")["code"] == "unauthorized"
    for c in (alice, anon):
        c.close()
