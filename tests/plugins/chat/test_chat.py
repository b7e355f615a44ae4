"""The chat plugin with two aurora-host replicas and one real Redis.

Identity comes from the probe fixture plugin (?user=NAME), so these tests do
not depend on the auth plugin. Every wait is a receive with a deadline."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.parse

import pytest
import redis as redis_py

from chat_support import TIMEOUT, Client, start_replica, wait_presence, wait_ready
from real_servers import RedisServer


@pytest.fixture(scope="module")
def replicas(redis_srv, tmp_path_factory):
    a = start_replica(tmp_path_factory.mktemp("replica-a"), redis_srv.url)
    b = start_replica(tmp_path_factory.mktemp("replica-b"), redis_srv.url)
    yield a, b
    for h in (a, b):
        assert h.stop() == (0, False), h.stderr_tail()


@pytest.fixture
def r(redis_srv):
    client = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
    yield client
    client.close()


def test_seed_clients_across_replicas_get_every_message_in_order(replicas, r):
    a, b = replicas
    alice, bob = Client(a, "alice"), Client(b, "bob")
    for c in (alice, bob):
        c.settled()
    for i in range(1000):
        alice.send(text=f"m{i}")  # the seed's frame: {"text": ...}
    got = bob.messages(1000)
    assert [m["text"] for m in got] == [f"m{i}" for i in range(1000)]
    assert all({"user", "text", "ts", "id", "userId"} <= m.keys() for m in got)  # seed fields + ours
    assert got[0]["user"] == "user-alice" and got[0]["userId"] == "alice"
    ids = [m["id"] for m in got]
    stream = dict(r.xrange("chat:messages", ids[0], ids[-1]))
    for m in got:
        assert stream[m["id"]] == {"roomId": "general", "userId": "alice", "text": m["text"], "username": "user-alice"}
    alice.close()
    bob.close()


def test_rooms_are_isolated_and_ordered(replicas):
    a, b = replicas
    clients = [Client(a if i % 2 else b, f"u{i}") for i in range(20)]
    for i, c in enumerate(clients):
        c.settled()
        c.send(type="leave", room="general")
        c.wait(lambda f: f.get("type") == "left", "left")
        c.send(type="join", room=f"room{i % 5}", ref=i)
        assert c.wait(lambda f: f.get("type") == "joined", "joined") == {"type": "joined", "room": f"room{i % 5}", "ref": i}
    for i, c in enumerate(clients):
        for k in range(5):
            c.send(type="message", room=f"room{i % 5}", text=f"{i}:{k}")
    for i, c in enumerate(clients):
        got = c.messages(20, room=f"room{i % 5}")  # 4 members x 5 messages
        assert len({m["id"] for m in got}) == 20
        assert [m["id"] for m in got] == sorted((m["id"] for m in got), key=lambda s: tuple(map(int, s.split("-"))))
        assert {int(m["text"].split(":")[0]) % 5 for m in got} == {i % 5}
        assert not [f for f in c.frames if f.get("type") == "message" and f.get("room") != f"room{i % 5}"]
    for c in clients:
        c.close()


def test_resume_on_the_other_replica_gets_exactly_what_was_missed(replicas):
    a, b = replicas
    carol, dave = Client(a, "carol"), Client(b, "dave")
    carol.settled()
    dave.settled()
    dave.send(text="before")
    last = carol.messages(1)[0]["id"]
    carol.close()

    for i in range(200):
        dave.send(text=f"missed {i}")
    dave.messages(201)  # dave saw them all (so replica B has broadcast them)

    carol = Client(b, "carol")  # the other replica
    carol.settled()
    carol.send(type="resume", room="general", since=last, ref="r")
    resumed = carol.messages(200)
    assert [m["text"] for m in resumed] == [f"missed {i}" for i in range(200)]
    done = carol.wait(lambda f: f.get("type") == "resumed", "resumed")
    assert (done["count"], done["complete"], done["ref"]) == (200, True, "r")
    dave.send(text="live")
    assert carol.messages(1)[0]["text"] == "live"
    assert not [f for f in carol.frames if f.get("type") == "message"], "a duplicate"

    # Resume into a room the connection is not in: history, then live, once each.
    dave.send(type="join", room="tech")
    dave.wait(lambda f: f.get("type") == "joined", "joined")
    for i in range(30):
        dave.send(type="message", room="tech", text=f"t{i}")
    first = dave.messages(30, room="tech")[0]["id"]
    carol.send(type="resume", room="tech", since="0-0")
    assert [m["text"] for m in carol.messages(30, room="tech")] == [f"t{i}" for i in range(30)]
    for i in range(30, 40):
        dave.send(type="message", room="tech", text=f"t{i}")
    assert [m["text"] for m in carol.messages(10, room="tech")] == [f"t{i}" for i in range(30, 40)]
    assert first
    carol.close()
    dave.close()


def test_same_ref_three_times_is_one_message(replicas, r):
    a, _ = replicas
    erin = Client(a, "erin")
    erin.settled()
    acks = []
    for _ in range(3):
        erin.send(type="message", text="once", ref="dup-1")
        acks.append(erin.wait(lambda f: f.get("type") == "ack" and f.get("ref") == "dup-1", "ack"))
    assert len({a["id"] for a in acks}) == 1
    assert [a.get("duplicate", False) for a in acks] == [False, True, True]
    entries = [e for e in r.xrange("chat:messages") if e[1].get("ref") == "dup-1"]
    assert len(entries) == 1
    erin.close()


def test_malformed_requests_get_errors_and_the_connection_stays(replicas):
    a, _ = replicas
    c = Client(a, "mal")
    c.settled()
    cases = [
        ({"type": "join", "room": "bad room!"}, "bad_room"),
        ({"type": "join"}, "bad_field"),
        ({"type": "join", "room": 7}, "bad_field"),
        ({"type": "message", "text": ""}, "empty"),
        ({"type": "message", "text": "x" * 4001}, "too_long"),
        ({"type": "message", "text": 42}, "bad_field"),
        ({"type": "message", "room": "elsewhere", "text": "hi"}, "not_member"),
        ({"type": "resume", "room": "general"}, "bad_field"),
        ({"type": "resume", "room": "general", "since": "yesterday"}, "bad_field"),
        ({"type": "read", "room": "general", "id": "x"}, "bad_field"),
        ({"type": "nonsense"}, "unhandled"),
    ]
    for frame, code in cases:
        c.send(**frame, ref=code)
        err = c.wait(lambda f: f.get("type") == "error" and f.get("ref") == code, f"error {code}")
        assert err["code"] == code, (frame, err)
    for i in range(7):  # max_rooms is 8, general included
        c.send(type="join", room=f"many{i}")
        c.wait(lambda f: f.get("type") == "joined", "joined")
    c.send(type="join", room="one-too-many", ref="cap")
    assert c.wait(lambda f: f.get("ref") == "cap", "cap error")["code"] == "too_many_rooms"
    c.send(type="message", text="still here", ref="alive")  # the connection is still up
    assert c.wait(lambda f: f.get("type") == "ack" and f.get("ref") == "alive", "ack")["id"]
    c.close()


def test_read_markers_only_move_forward(replicas, r):
    a, _ = replicas
    c = Client(a, "reader")
    c.settled()
    c.send(type="read", room="general", id="1700000000000-5", ref=1)
    assert c.wait(lambda f: f.get("ref") == 1, "ack")["read"] == "1700000000000-5"
    c.send(type="read", room="general", id="1700000000000-2", ref=2)
    assert c.wait(lambda f: f.get("ref") == 2, "ack")["read"] == "1700000000000-5"
    assert r.hget("chat:read:reader", "general") == "1700000000000-5"
    c.close()


def test_presence_across_replicas_and_a_killed_replica_disappears(redis_srv, tmp_path):
    a = start_replica(tmp_path / "pa", redis_srv.url)
    b = start_replica(tmp_path / "pb", redis_srv.url)
    try:
        frank, grace = Client(a, "frank"), Client(b, "grace")
        for c in (frank, grace):
            c.settled()
            c.send(type="join", room="lobby")
            c.wait(lambda f: f.get("type") == "joined", "joined")
        frank.wait(lambda f: f.get("type") == "presence" and f.get("event") == "join" and f.get("userId") == "grace"
                   and f.get("room") == "lobby", "grace's join event in lobby")
        frank.send(type="presence", room="lobby", ref="p0")
        snap = frank.wait(lambda f: f.get("ref") == "p0", "snapshot")
        assert {u["userId"] for u in snap["users"]} == {"frank", "grace"}

        b.kill()  # no goodbye: its entries must expire (presence_ttl_s = 3)
        assert wait_presence(frank, "lobby", {"frank"}) == {"frank"}
        frank.close()
    finally:
        a.stop()
        b.stop()


def test_presence_snapshot_lists_hostile_names_exactly_and_each_user_once(replicas):
    """Snapshots reuse the member entries' JSON text; names that look like
    JSON must come back exactly as they went in, each user once."""
    a, b = replicas
    hostile = 'q"uo\\te \u00fc,"user":"x\t</script>'
    enc = urllib.parse.quote(hostile, safe="")
    clients = [Client(a, enc), Client(b, enc), Client(a, "plain-snap")]
    try:
        for c in clients:
            c.settled()
        room = "snap-room"
        for c in clients:
            c.send(type="join", room=room)
            c.wait(lambda f: f.get("type") == "joined", "joined")
        clients[2].send(type="presence", room=room, ref="s1")
        snap = clients[2].wait(lambda f: f.get("ref") == "s1", "snapshot")
        assert sorted((u["userId"], u["user"]) for u in snap["users"]) == sorted(
            [(hostile, "user-" + hostile), ("plain-snap", "user-plain-snap")]), snap
        assert snap["connections"] == 3, snap
    finally:
        for c in clients:
            c.close()


def test_redis_outage_answers_unavailable_then_recovers(redis_srv, tmp_path):
    a = start_replica(tmp_path / "oa", redis_srv.url, redis_timeout_ms=300)
    b = start_replica(tmp_path / "ob", redis_srv.url, redis_timeout_ms=300)
    try:
        sender, receiver = Client(a, "hank"), Client(b, "ivy")
        sender.settled()
        receiver.settled()
        redis_srv.kill_process()
        t0 = time.monotonic()
        for i in range(5):
            sender.send(type="message", text=f"lost? {i}", ref=f"o{i}")
        for i in range(5):
            e = sender.wait(lambda f: f.get("ref") == f"o{i}", f"answer o{i}")
            assert e["type"] == "error" and e["code"] == "unavailable", e
        assert time.monotonic() - t0 < 5, "answers took longer than the Redis timeout allows"
        assert not [f for f in sender.frames if f.get("type") == "ack"]
        wait_ready(a, 503)

        redis_srv.restart()  # an empty Redis on the same port: scripts reloaded, subscriber back
        wait_ready(a)
        wait_ready(b)
        deadline = time.monotonic() + TIMEOUT
        while True:  # the first sends after the restart may still meet the backoff
            sender.send(type="message", text="back", ref="back")
            ans = sender.wait(lambda f: f.get("ref") == "back", "answer")
            if ans["type"] == "ack":
                break
            assert time.monotonic() < deadline, ans
            time.sleep(0.1)  # bounded retry while the connection backs off
        assert receiver.messages(1)[0]["text"] == "back"
        sender.close()
        receiver.close()
    finally:
        a.stop()
        b.stop()


def answer_to(frame: dict, ref: str) -> bool:
    """The ack or error answering `ref` (the sender's own copy of its
    message carries the ref too)."""
    return frame.get("ref") == ref and frame.get("type") in ("ack", "error")


def test_a_paused_redis_never_stalls_the_loop(tmp_path):
    """Redis frozen by SIGSTOP: its sockets stay open and nothing answers.
    Chat's Redis I/O runs on the host's loop (ABI 1.2), so this is where a
    blocking call would show: the loop must keep serving everything else at
    once (another plugin's request, /health), the messages sent meanwhile are
    answered `unavailable` once the deadline passes (never acked, never left
    waiting), and when Redis runs again sends are acked and delivered.

    Commands already written when Redis froze run when it wakes: those
    messages were answered `unavailable` but may be stored. The protocol says
    so and the client retries with the same ref: each is then delivered
    exactly once. A message refused while the connection was down was never
    written and never appears."""
    srv = RedisServer.start()  # private: frozen below
    pid = srv.proc.proc.pid
    host = start_replica(tmp_path / "paused", srv.url, redis_timeout_ms=2000)
    try:
        alice, bob = Client(host, "p-alice"), Client(host, "p-bob")
        alice.settled()
        bob.settled()
        alice.send(type="message", text="before", ref="b0")
        assert alice.wait(lambda f: answer_to(f, "b0"), "ack")["type"] == "ack"
        assert bob.messages(1)[0]["text"] == "before"

        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            for i in range(5):
                alice.send(type="message", text=f"frozen {i}", ref=f"p{i}")
            worst = 0.0
            for _ in range(10):  # the loop answers other work while 5 sends wait on Redis
                t = time.monotonic()
                bob.send(type="whoami")
                bob.wait(lambda f: f.get("type") == "whoami", "whoami")
                assert host.get("/health").status == 200
                worst = max(worst, time.monotonic() - t)
            answers = [alice.wait(lambda f, i=i: answer_to(f, f"p{i}"), f"answer p{i}") for i in range(5)]
            waited = time.monotonic() - t0
            assert all(a["type"] == "error" and a["code"] == "unavailable" for a in answers), answers
            # A blocking client would hold the loop for the whole 2 s deadline.
            assert worst < 1.0, f"the loop stalled {worst:.2f} s while Redis was frozen"
            assert waited < 6.0, f"answers took {waited:.1f} s (deadline 2 s)"
            alice.send(type="message", text="refused at once", ref="fast")
            assert alice.wait(lambda f: answer_to(f, "fast"), "answer")["code"] == "unavailable"
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_ready(host)  # ready = subscribed and the send connection up, scripts loaded
        for i in range(5):  # the client's retries, same refs
            alice.send(type="message", text=f"frozen {i}", ref=f"p{i}")
            ans = alice.wait(lambda f, i=i: answer_to(f, f"p{i}"), f"answer p{i}")
            assert ans["type"] == "ack", ans
        alice.send(type="message", text="after", ref="after")
        assert alice.wait(lambda f: answer_to(f, "after"), "answer")["type"] == "ack"
        got = [m["text"] for m in bob.messages(6)]
        assert sorted(got) == sorted([f"frozen {i}" for i in range(5)] + ["after"]), got
        assert got[-1] == "after"
        alice.close()
        bob.close()
    finally:
        assert host.stop() == (0, False), host.stderr_tail()
        srv.stop()


def fill_stream(r, stream: str, n: int, room: str) -> None:
    """n entries shaped like the send script's, written straight to Redis
    (pipelined): old traffic of another room that every resume must scan."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"roomId": room, "userId": "old", "text": f"old {i}", "username": "user-old"})
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()


def test_resume_scans_never_delay_live_delivery(redis_srv, tmp_path, r):
    """Resumes that each scan 20,000 entries, seconds of them, asked for by
    three clients while a bystander pair talks: the bystander's messages must
    not wait behind them (they used to: the scans ran on the fan-out thread,
    and a live message waited 2.5-3.6 s). Asking twice for one room while the
    first resume runs is answered `busy`."""
    stream = "chat:resume-load"
    fill_stream(r, stream, 20000, "elsewhere")
    host = start_replica(tmp_path / "rl", redis_srv.url, stream=stream)
    try:
        resumers = [Client(host, f"resumer{i}") for i in range(3)]
        alice, bob = Client(host, "by-alice"), Client(host, "by-bob")
        for c in resumers + [alice, bob]:
            c.settled()
        rooms, rounds = [f"archive{k}" for k in range(7)], 3  # max_rooms 8, general included
        answers = {"resumed": 0, "busy": 0}
        spans: list[tuple[float, float]] = []  # each round of a resumer: first request, last answer
        failures: list[str] = []
        lock = threading.Lock()

        def resume_rounds(c: Client, who: int) -> None:
            try:
                for k in range(rounds):
                    t0 = time.monotonic()
                    refs = []
                    for room in rooms:  # every room twice: the second asks while the first runs
                        for n in range(2):
                            refs.append(f"{who}-{k}-{room}-{n}")
                            c.send(type="resume", room=room, since="0-0", ref=refs[-1])
                    for ref in refs:
                        f = c.wait(lambda f, ref=ref: f.get("ref") == ref and f.get("type") in ("resumed", "error"),
                                   f"answer {ref}", timeout=120)
                        with lock:
                            if f["type"] == "resumed":
                                answers["resumed"] += 1
                            else:
                                assert f["code"] == "busy", f
                                answers["busy"] += 1
                    with lock:
                        spans.append((t0, time.monotonic()))
            except Exception as e:  # reported by the main thread
                failures.append(f"resumer {who}: {e!r}")

        threads = [threading.Thread(target=resume_rounds, args=(c, i)) for i, c in enumerate(resumers)]
        start = time.monotonic()
        for t in threads:
            t.start()
        latencies = []
        n = 0
        while any(t.is_alive() for t in threads):
            n += 1
            t0 = time.monotonic()
            alice.send(type="message", text=f"live {n}", ref=n)
            got = bob.wait(lambda f: f.get("type") == "message" and f.get("text") == f"live {n}", f"live {n}", 120)
            latencies.append(time.monotonic() - t0)
            assert got["userId"] == "by-alice"
            time.sleep(0.02)  # paced: a conversation, not a flood
        for t in threads:
            t.join()
        busy_for = time.monotonic() - start
        assert not failures, failures
        worst = max(latencies)
        print(f"\nresumes busy for {busy_for:.2f} s ({answers}); a round took "
              f"{min(b - a for a, b in spans):.2f}-{max(b - a for a, b in spans):.2f} s; the bystander's "
              f"{n} messages: worst {worst * 1000:.1f} ms, median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
        assert worst < 1.0, f"a live message waited {worst:.2f} s behind resumes (busy for {busy_for:.2f} s)"
        # Every request answered: one full resume per room and round, the
        # second ask of each refused at once.
        assert answers == {"resumed": 3 * rounds * len(rooms), "busy": 3 * rounds * len(rooms)}, answers
        for c in resumers + [alice, bob]:
            c.close()
    finally:
        host.stop()


def test_reads_beyond_read_queue_max_are_answered_busy(redis_srv, tmp_path, r):
    stream = "chat:read-queue"
    fill_stream(r, stream, 20000, "elsewhere")  # every resume scans 20,000 entries: they stay queued a while
    host = start_replica(tmp_path / "rq", redis_srv.url, stream=stream, read_queue_max=2)
    try:
        c = Client(host, "queued")
        c.settled()
        for k in range(4):
            c.send(type="resume", room=f"q{k}", since="0-0", ref=k)
        got = [c.wait(lambda f, k=k: f.get("ref") == k and f.get("type") in ("resumed", "error"), f"answer {k}")
               for k in range(4)]
        assert [f["type"] for f in got] == ["resumed", "resumed", "error", "error"], got
        assert {f.get("code") for f in got[2:]} == {"busy"}, got
        # Refused, they had no effect: not joined, and the slots are free again.
        c.send(type="message", room="q3", text="x", ref="nm")
        assert c.wait(lambda f: f.get("ref") == "nm", "not_member")["code"] == "not_member"
        c.send(type="resume", room="q3", since="0-0", ref="again")
        assert c.wait(lambda f: f.get("ref") == "again", "answer")["type"] == "resumed"
        assert host.metrics().total("aurora_chat_reads_busy_total") == 2
        c.close()
    finally:
        host.stop()


def test_resume_into_a_busy_room_has_no_gap_and_no_repeat(replicas, r):
    """The resume's read runs on its own thread while live messages keep
    coming: the replayed range ends where live delivery began (the join
    position), so together they hold every message of the room once."""
    a, b = replicas
    dave, carol = Client(a, "dave2"), Client(b, "carol2")
    dave.settled()
    carol.settled()
    room = "busy-room"
    dave.send(type="join", room=room)
    dave.wait(lambda f: f.get("type") == "joined", "joined")
    sent: list[str] = []
    for i in range(150):  # history before the resume
        dave.send(type="message", room=room, text=f"h{i}", ref=f"h{i}")
        sent.append(dave.wait(lambda f, i=i: f.get("ref") == f"h{i}" and f.get("type") == "ack", "ack")["id"])
    for i in range(150):  # and more while it runs: sent without waiting
        dave.send(type="message", room=room, text=f"l{i}", ref=f"l{i}")
        if i == 20:
            carol.send(type="resume", room=room, since="0-0", ref="rs")
    for i in range(150):
        sent.append(dave.wait(lambda f, i=i: f.get("ref") == f"l{i}" and f.get("type") == "ack", "ack")["id"])
    done = carol.wait(lambda f: f.get("ref") == "rs", "resumed")
    assert done["type"] == "resumed" and done["complete"], done
    got = [m["id"] for m in carol.messages(300, room=room)]
    key = lambda s: tuple(map(int, s.split("-")))  # noqa: E731
    assert len(got) == len(set(got)), "a message twice"
    assert sorted(got, key=key) == sorted(sent, key=key), "a gap"
    assert done["count"] == len([i for i in got if key(i) <= key(done["last_id"])])
    dave.close()
    carol.close()


def presence_events(c: Client, room: str, user_id: str) -> list[str]:
    return [f["event"] for f in c.frames
            if f.get("type") == "presence" and f.get("room") == room and f.get("userId") == user_id and "event" in f]


def test_presence_flapping_is_coalesced_into_the_net_change(replicas):
    """100 leave/join pairs in quick succession used to send 200 presence
    events to every member; within presence_coalesce_ms they cancel out."""
    a, b = replicas
    watcher, flapper = Client(a, "watcher"), Client(b, "flapper")
    for c in (watcher, flapper):
        c.settled()
    room = "flap-room"
    watcher.send(type="join", room=room)
    watcher.wait(lambda f: f.get("type") == "joined", "joined")
    flapper.send(type="join", room=room)
    flapper.wait(lambda f: f.get("type") == "joined", "joined")
    watcher.wait(lambda f: f.get("type") == "presence" and f.get("room") == room and f.get("event") == "join"
                 and f.get("userId") == "flapper", "the flapper's first join event")

    t0 = time.monotonic()
    for i in range(100):
        flapper.send(type="leave", room=room, ref=f"l{i}")
        assert flapper.wait(lambda f, i=i: f.get("ref") == f"l{i}", f"left {i}")["type"] == "left"
        flapper.send(type="join", room=room, ref=f"j{i}")
        assert flapper.wait(lambda f, i=i: f.get("ref") == f"j{i}", f"joined {i}")["type"] == "joined"
    flapping = time.monotonic() - t0
    # A marker after the flapping: once it arrives, and a coalescing window
    # later, every event the flapping caused has arrived too.
    watcher.send(type="message", room=room, text="fence", ref="fence")
    watcher.wait(lambda f: f.get("ref") == "fence" and f.get("type") == "ack", "fence ack")
    time.sleep(1.5)  # > presence_coalesce_ms (500): let the last window close, bounded
    watcher.send(type="presence", room=room, ref="after")
    snap = watcher.wait(lambda f: f.get("ref") == "after", "snapshot")
    events = presence_events(watcher, room, "flapper")
    print(f"\n100 leave/join pairs in {flapping:.2f} s: the watcher got {len(events)} presence events: {events[:8]}")
    assert len(events) <= 6, events
    assert not events or events[-1] == "join", events  # the net state: still here
    assert {u["userId"] for u in snap["users"]} == {"watcher", "flapper"}, snap
    assert snap["connections"] == 2, snap

    # A real change still arrives, once, as the net change of its window.
    flapper.send(type="leave", room=room, ref="bye")
    flapper.wait(lambda f: f.get("ref") == "bye", "left")
    watcher.wait(lambda f: f.get("type") == "presence" and f.get("room") == room and f.get("event") == "leave"
                 and f.get("userId") == "flapper", "the flapper's leave event")
    watcher.close()
    flapper.close()
