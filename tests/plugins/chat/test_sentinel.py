"""Chat on redis.mode "sentinel" (docs/scaling.md): two aurora-host replicas,
a Redis master, two Redis replicas and three Sentinels, all real, on
loopback.

The failover test kills the master with SIGKILL while a client sends, and
counts, from the clients' side and from the new master's stream:
  - how long sends were answered `unavailable` against how long the
    Sentinels took to promote the replica (no Aurora process restarts);
  - acknowledged messages the new master does not have, with and without
    chat's `wait_replicas`.

Replication on loopback is too quick to lose anything by chance, so the test
makes the replicas lag on purpose: they are stopped (SIGSTOP) while the
client keeps sending, until the master holds at least LAG_BYTES of
replication stream for each that it has not read (its output buffer, `omem`
in CLIENT LIST: beyond the kernel's socket buffers, so lost with the
master). Then the master is killed and the replicas continued. Without WAIT
those messages were acknowledged and are lost; with WAIT none was
acknowledged (WAIT timed out), and once a replica is promoted the other
one replicates it, so WAIT is satisfied again. Two replicas, because with
one, nothing is left to satisfy `wait_replicas: 1` after a failover: every
send would be answered `unavailable` until an operator adds a replica."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import redis as redis_py

from aurora_host import AuroraHost
from chat_support import (BUILD, HOST, TIMEOUT, Client, chat_config, replica_attached_after, require, start_replica,
                          wait_ready, wait_recorded)
from real_servers import SentinelTopology

RATELIMIT = BUILD / "plugins" / "ratelimit.so"

LAG_BYTES = 1 << 20
WINDOW = 100  # messages in flight per round
TEXT = "x" * 3000  # large, so that the replication stream outgrows the socket buffers quickly


@pytest.fixture
def topology():
    t = SentinelTopology.start(replicas=2)
    yield t
    t.stop()


def master_client(t: SentinelTopology) -> redis_py.Redis:
    host, port = t.master_address()
    return redis_py.Redis(host=host, port=port, socket_timeout=2, decode_responses=True)


def replica_backlog(r: redis_py.Redis) -> int:
    """Bytes of replication stream the master holds for the replica that has
    the least waiting (omem)."""
    return min(int(c.get("omem", 0)) for c in r.client_list(_type="replica"))


class Sender:
    """One client sending messages with refs in rounds of WINDOW, keeping
    every answer: acks (ref -> id) and errors (ref -> code)."""

    def __init__(self, client: Client):
        self.c = client
        self.n = 0
        self.acked: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def round(self, count: int = WINDOW, timeout: float = TIMEOUT) -> tuple[int, int]:
        refs = []
        for _ in range(count):
            self.n += 1
            ref = f"m{self.n}"
            refs.append(ref)
            self.c.send(type="message", text=f"{ref} {TEXT}", ref=ref)
        acks = errors = 0
        pending = set(refs)
        deadline = time.monotonic() + timeout
        while pending:
            f = self.c.wait(lambda f: f.get("type") in ("ack", "error") and f.get("ref") in pending, "an answer",
                            max(0.1, deadline - time.monotonic()))
            pending.discard(f["ref"])
            if f["type"] == "ack":
                self.acked[f["ref"]] = f["id"]
                acks += 1
            else:
                assert f["type"] == "error", f
                self.errors[f["ref"]] = f["code"]
                errors += 1
        self.c.frames = [f for f in self.c.frames if f.get("type") != "message"]  # its own, live
        return acks, errors


def switch_listener(t: SentinelTopology) -> tuple[threading.Event, list[float]]:
    """Records when the first Sentinel announces +switch-master (the leader
    of the failover; the others learn from it, seconds later at times)."""
    switched = threading.Event()
    at: list[float] = []
    lock = threading.Lock()

    def listen(s) -> None:
        conn = redis_py.Redis(host=s.host, port=s.port, socket_timeout=60)
        pubsub = conn.pubsub()
        pubsub.subscribe("+switch-master")
        pubsub.get_message(timeout=5)  # the subscription's confirmation
        ready.release()
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and not switched.is_set():
                m = pubsub.get_message(timeout=0.5)
                if m and m["type"] == "message":
                    with lock:
                        if not at:
                            at.append(time.monotonic())
                    switched.set()
        except (redis_py.RedisError, OSError):
            pass  # this Sentinel went away (the topology is stopping): another one reports
        finally:
            pubsub.close()
            conn.close()

    ready = threading.Semaphore(0)
    for s in t.sentinels:
        threading.Thread(target=listen, args=(s,), daemon=True).start()
    for _ in t.sentinels:
        assert ready.acquire(timeout=10), "a Sentinel did not confirm the subscription"
    return switched, at


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["no-wait", "wait-1"])
def test_a_killed_master_is_followed_and_wait_loses_no_acked_message(topology, tmp_path, wait_replicas):
    chat = {"wait_replicas": wait_replicas, "wait_timeout_ms": 300, "redis_timeout_ms": 1000}
    a = start_replica(tmp_path / "a", topology.host_config(), **chat)
    b = start_replica(tmp_path / "b", topology.host_config(), **chat)
    try:
        sender, receiver = Sender(Client(a, "alice")), Client(b, "bob")
        sender.c.settled()
        receiver.settled()
        assert sender.round(20) == (20, 0)
        got = receiver.messages(20)
        assert [m["text"].split()[0] for m in got] == [f"m{i}" for i in range(1, 21)]
        last_seen = got[-1]["id"]

        # The replica stops reading; the client sends until the master holds
        # LAG_BYTES for it that no socket buffer took.
        master = master_client(topology)
        replica_pids = [s.proc.proc.pid for s in topology.replicas]
        for pid in replica_pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            rounds, deadline = 0, time.monotonic() + 60
            while replica_backlog(master) < LAG_BYTES:
                assert time.monotonic() < deadline, f"backlog {replica_backlog(master)} after {rounds} rounds"
                sender.round()
                rounds += 1
            backlog = replica_backlog(master)
            acked_before_kill = len(sender.acked)
            switched, switched_at = switch_listener(topology)
            os.kill(topology.master.proc.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            attached_at = replica_attached_after(topology.replicas)
        finally:
            for pid in replica_pids:
                os.kill(pid, signal.SIGCONT)
        master.close()

        # Sends go on, one at a time, until one is acknowledged by the new
        # master; no Aurora process is touched.
        first_ack_at = None
        failed_during = 0
        while first_ack_at is None:
            assert time.monotonic() - killed_at < 45, f"no ack 45 s after the kill ({failed_during} unavailable)"
            acks, errors = sender.round(1)
            failed_during += errors
            if acks:
                first_ack_at = time.monotonic()
        assert switched.wait(TIMEOUT), "no +switch-master announced"
        failover_s = switched_at[0] - killed_at
        outage_s = first_ack_at - killed_at
        assert sender.errors and set(sender.errors.values()) == {"unavailable"}, set(sender.errors.values())
        # Unavailable for the failover, then back within about a second (the
        # next watchdog tick, a reconnect, the scripts loaded). With
        # wait_replicas, until the Sentinels have pointed the other replica
        # at the new master and it is online there (WAIT needs it: Redis's
        # time, 0.1 to 4.5 s after the switch in these runs), then within
        # the same 1.5 s.
        if wait_replicas:
            # An ack under WAIT means a replica is online there.
            attached_s = wait_recorded(attached_at, "no replica came online at the new master") - killed_at
            assert outage_s <= max(failover_s, attached_s) + 1.5, (outage_s, failover_s, attached_s)
        else:
            # The Sentinel chat asks may learn of it after the leader: chat
            # asks the next one every 500 ms while the master is down.
            assert outage_s <= failover_s + 1.5, (outage_s, failover_s)
        promoted = topology.master_address()[1]
        assert promoted in {s.port for s in topology.replicas}
        wait_ready(a)
        wait_ready(b)

        # Live delivery and resume work through the new master, on both replicas.
        assert sender.round(5) == (5, 0)
        after = [f"m{sender.n - i}" for i in range(4, -1, -1)]
        receiver.wait(lambda f: f.get("type") == "message" and f.get("text", "").startswith(after[-1] + " "),
                      "the last message after the failover", TIMEOUT)

        new_master = redis_py.Redis(host="127.0.0.1", port=promoted, decode_responses=True)
        stored = {fields["ref"]: entry_id for entry_id, fields in new_master.xrange("chat:messages")}
        lost = [ref for ref in sender.acked if ref not in stored]
        print(json.dumps({"wait_replicas": wait_replicas, "rounds_while_lagging": rounds, "backlog_bytes": backlog,
                          "acked_before_kill": acked_before_kill, "acked_but_lost": len(lost),
                          "unavailable": len(sender.errors), "failover_s": round(failover_s, 2),
                          "unavailable_for_s": round(outage_s, 2)}))
        if wait_replicas:
            assert lost == [], f"{len(lost)} acknowledged messages lost with wait_replicas=1: {lost[:5]}"
        else:
            assert lost, "the lagging replica lost nothing: the test did not make it lag"

        # A resume on the other replica from the last message seen before the
        # outage returns exactly what the new master has after it.
        expect = [ref for ref, _ in sorted(stored.items(), key=lambda kv: tuple(map(int, kv[1].split("-"))))
                  if tuple(map(int, stored[ref].split("-"))) > tuple(map(int, last_seen.split("-")))]
        late = Client(b, "carol")
        late.settled()
        late.send(type="resume", room="general", since=last_seen, ref="r1")
        done = late.wait(lambda f: f.get("ref") == "r1", "the resume's answer", TIMEOUT)
        assert done["type"] == "resumed", done
        replayed = [f["text"].split()[0] for f in late.frames if f.get("type") == "message"]
        assert replayed == expect[:len(replayed)] and len(replayed) == done["count"], (replayed[:3], expect[:3])
        if done["complete"]:
            assert len(replayed) == len(expect)
        for c in (sender.c, receiver, late):
            c.close()
    finally:
        for h in (a, b):
            h.stop()


def test_a_planned_failover_moves_chat_and_ratelimit_without_a_restart(tmp_path):
    """SENTINEL FAILOVER: the old master stays up and becomes a replica, so
    the plugins' connections to it do not break; they must notice
    (+switch-master from the Sentinel they listen to, or READONLY replies)
    and move. Until the old master is turned into a replica it still takes
    writes, which its resync then discards (docs/scaling.md: only
    wait_replicas closes that window), so the test waits until a message
    acknowledged is one the new master has. ratelimit then runs its script
    there: a new user's sixth message in a second is refused, not waved
    through as a Redis error."""
    t = SentinelTopology.start(replicas=1)
    cfg = chat_config(t.host_config())
    cfg["plugins"].insert(1, {"name": "ratelimit", "path": require(RATELIMIT),
                              "config": {"on_redis_error": "allow", "room_max": 5}})
    h = AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    try:
        wait_ready(h)
        dora = Sender(Client(h, "dora"))
        dora.c.settled()
        assert dora.round(3) == (3, 0)
        old = t.master_address()
        t.ask("SENTINEL", "FAILOVER", t.MASTER_NAME)
        deadline = time.monotonic() + 30
        while t.master_address() == old:  # the Sentinels' own state, polled with a deadline
            assert time.monotonic() < deadline, "SENTINEL FAILOVER did not move the master"
            time.sleep(0.05)
        new_master = redis_py.Redis(host=t.master_address()[0], port=t.master_address()[1], decode_responses=True)
        deadline = time.monotonic() + 15
        while True:
            if dora.round(1) == (1, 0) and new_master.xrange("chat:messages", min=dora.acked[f"m{dora.n}"], count=1):
                break
            assert time.monotonic() < deadline, f"chat did not move: {list(dora.errors.values())[-3:]}"
            # Polls chat's move, bounded by the deadline, one send per 250 ms:
            # ratelimit (room_max 5 per second) would answer a faster loop
            # `rate_limited`, which round() does not wait for (a 9.8 s
            # timeout, seen when the move took more than a few polls).
            time.sleep(0.25)
        wait_ready(h)
        assert set(dora.errors.values()) <= {"unavailable"}, dora.errors

        eve = Client(h, "eve")
        eve.settled()
        for i in range(7):
            eve.send(type="message", text=f"e{i}", ref=f"e{i}")
        answers = [eve.wait(lambda f, i=i: f.get("ref") == f"e{i}" and f.get("type") in ("ack", "error", "rate_limited"),
                            f"answer e{i}") for i in range(7)]
        assert [a["type"] for a in answers] == ["ack"] * 5 + ["rate_limited"] * 2, answers
        refs = {fields.get("ref") for _, fields in new_master.xrange("chat:messages")}
        assert {f"e{i}" for i in range(5)} <= refs
        assert not any(line for line in h.stderr_lines() if '"level":"error"' in line), h.stderr_tail()
        for c in (dora.c, eve):
            c.close()
    finally:
        h.stop()
        t.stop()


def test_a_sentinel_that_never_answers_gives_way_to_the_next(tmp_path):
    """The first Sentinel listed accepts connections and answers nothing (a
    machine that hangs, a network that drops packets): each connection gives
    up on it after redis_timeout_ms and asks the next one."""
    t = SentinelTopology.start(replicas=1)
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # never accepted: the kernel completes the handshakes, nobody answers
    try:
        redis_section = t.host_config()
        redis_section["sentinels"] = [f"127.0.0.1:{hole.getsockname()[1]}", *redis_section["sentinels"]]
        h = start_replica(tmp_path, redis_section, redis_timeout_ms=500)
        try:
            c = Client(h, "faye")
            c.settled()
            c.send(type="message", text="through the second Sentinel", ref="s1")
            assert c.wait(lambda f: f.get("ref") == "s1", "the answer")["type"] == "ack"
            c.close()
        finally:
            h.stop()
    finally:
        hole.close()
        t.stop()


def test_wait_timeout_must_leave_room_under_the_redis_timeout(tmp_path):
    import json as json_mod
    import subprocess

    cfg = chat_config("redis://127.0.0.1:1/0", wait_replicas=1, wait_timeout_ms=900, redis_timeout_ms=1000)
    path = tmp_path / "c.json"
    path.write_text(json_mod.dumps(cfg))
    out = subprocess.run([require(HOST), "--check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "wait_timeout_ms must be at least 250 ms shorter than redis_timeout_ms" in out.stderr
