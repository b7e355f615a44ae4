"""Read receipts others see (docs/protocol.md, "Read receipts"): a reader's
position reaches the room on both replicas, coalesced to one event per room
and interval however fast readers move, only forward; a joining client gets
the room's newest readers, and `receipts` asks for them. Real Redis, two
replicas, identities from the probe fixture."""

from __future__ import annotations

import secrets
import time

import pytest
import redis as redis_py

from chat_support import Client, start_replica
from waiting import wait_until


@pytest.fixture(scope="module")
def replicas(redis_srv, tmp_path_factory):
    a = start_replica(tmp_path_factory.mktemp("ra"), redis_srv.url, receipts_interval_ms=500)
    b = start_replica(tmp_path_factory.mktemp("rb"), redis_srv.url, receipts_interval_ms=500)
    yield a, b
    for h in (a, b):
        assert h.stop() == (0, False), h.stderr_tail()


def joined(host, user: str, room: str) -> Client:
    c = Client(host, user)
    c.settled()
    c.send(type="join", room=room, ref="j")
    c.wait(lambda f: f.get("ref") == "j", "joined")
    return c


def receipts_of(c: Client, room: str) -> list[dict]:
    """Every receipts event of `room` received so far (kept frames and new ones, for 0.1 s)."""
    got = []
    try:
        while True:
            got.append(c.wait(lambda f: f.get("type") == "receipts" and f.get("room") == room and "readers" not in f,
                              "receipts", timeout=0.1))
    except AssertionError:
        return got


def test_a_read_reaches_the_room_on_both_replicas_coalesced_and_only_forward(replicas):
    a, b = replicas
    room = "rr-" + secrets.token_hex(3)
    alice, bob, carol = joined(a, "alice", room), joined(b, "bob", room), joined(a, "carol", room)
    ids = []
    for i in range(30):
        alice.send(type="message", room=room, text=f"m{i}", ref=f"m{i}")
        ids.append(alice.wait(lambda f, i=i: f.get("ref") == f"m{i}" and f.get("type") == "ack", "ack")["id"])
    # Bob reads every message as it comes, 30 reads in well under a second.
    t0 = time.monotonic()
    for i, mid in enumerate(ids):
        bob.send(type="read", room=room, id=mid, ref=f"r{i}")
    for i in range(30):
        bob.wait(lambda f, i=i: f.get("ref") == f"r{i}", "read ack")
    # Alice (other replica) and Carol see Bob's position reach the last message...
    for c in (alice, carol):
        ev = c.wait(lambda f: f.get("type") == "receipts" and f.get("room") == room and
                    any(x["userId"] == "bob" and x["id"] == ids[-1] for x in f["reads"]), "bob's last read")
        assert {x["userId"] for x in ev["reads"]} == {"bob"} and ev["reads"][0]["user"] == "user-bob"
    took = time.monotonic() - t0
    # ... in at most a few events, not 30: one per room and 500 ms.
    extra = receipts_of(alice, room)
    assert len(extra) <= int(took / 0.5) + 2, (len(extra), took)
    # A read behind the stored position changes nothing and sends nothing:
    # Carol's read after it is the fence; every event up to hers names only her.
    bob.send(type="read", room=room, id=ids[3], ref="back")
    assert bob.wait(lambda f: f.get("ref") == "back", "ack")["read"] == ids[-1]
    carol.send(type="read", room=room, id=ids[5], ref="fence")
    carol.wait(lambda f: f.get("ref") == "fence", "ack")
    fence = alice.wait(lambda f: f.get("type") == "receipts" and f.get("room") == room and
                       any(x["userId"] == "carol" for x in f["reads"]), "carol's receipt")
    assert {x["userId"] for x in fence["reads"]} == {"carol"}
    assert receipts_of(alice, room) == []
    for c in (alice, bob, carol):
        c.close()


def test_a_joining_client_gets_the_newest_readers_and_can_ask_again(replicas, redis_srv):
    a, b = replicas
    room = "rs-" + secrets.token_hex(3)
    writer = joined(a, "writer", room)
    writer.send(type="message", room=room, text="hello", ref="h")
    mid = writer.wait(lambda f: f.get("ref") == "h" and f.get("type") == "ack", "ack")["id"]
    readers = [joined(b, f"reader{i}", room) for i in range(3)]
    for i, c in enumerate(readers):
        c.send(type="read", room=room, id=mid, ref="r")
        c.wait(lambda f: f.get("ref") == "r", "ack")
    r = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
    wait_until(lambda: r.zcard(f"chat:reads:{room}") == 3, "the three reads stored", timeout=5)
    r.close()
    late = Client(a, "late")
    late.settled()
    late.send(type="join", room=room)
    snap = late.wait(lambda f: f.get("type") == "receipts" and f.get("room") == room and "readers" in f, "snapshot")
    assert snap["readers"] == 3 and {x["userId"] for x in snap["reads"]} == {"reader0", "reader1", "reader2"}
    assert all(x["id"] == mid for x in snap["reads"])
    late.send(type="receipts", room=room, ref="again")
    again = late.wait(lambda f: f.get("ref") == "again", "receipts answer")
    assert again["type"] == "receipts" and again["readers"] == 3
    late.send(type="receipts", room="not-joined", ref="nj")
    assert late.wait(lambda f: f.get("ref") == "nj", "answer")["code"] == "not_member"
    for c in (writer, late, *readers):
        c.close()


def test_a_snapshot_lists_at_most_receipts_snapshot_max_newest_first(redis_srv, tmp_path):
    host = start_replica(tmp_path / "rm", redis_srv.url, receipts_snapshot_max=2, receipts_interval_ms=50)
    try:
        room = "rmax-" + secrets.token_hex(3)
        w = joined(host, "w", room)
        ids = []
        for i in range(3):
            w.send(type="message", room=room, text=f"x{i}", ref=f"x{i}")
            ids.append(w.wait(lambda f, i=i: f.get("ref") == f"x{i}" and f.get("type") == "ack", "ack")["id"])
        for i in range(3):
            c = joined(host, f"u{i}", room)
            c.send(type="read", room=room, id=ids[i], ref="r")
            c.wait(lambda f: f.get("ref") == "r", "ack")
            c.close()
        r = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
        wait_until(lambda: r.zcard(f"chat:reads:{room}") == 3, "three readers stored", timeout=5)
        w.send(type="receipts", room=room, ref="s")
        snap = w.wait(lambda f: f.get("ref") == "s", "snapshot")
        assert [x["userId"] for x in snap["reads"]] == ["u2", "u1"]
        assert snap["readers"] == 3 and snap["truncated"] is True
        w.close()
    finally:
        assert host.stop() == (0, False), host.stderr_tail()
