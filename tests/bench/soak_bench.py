"""Soak benchmark: mixed chat traffic against two replicas; fails on unbounded growth.

Starts a real redis-server and FerretDB on free loopback ports and two
aurora-host replicas in the all-in-one profile (auth + ratelimit + chat +
ingest, samples/config/all-in-one.json's pipeline), registers and logs in
users through the auth plugin's routes, and runs --duration seconds of
traffic from a generator process (asyncio, `websockets`):

  residents   --residents long-lived connections (half on each replica), each
              in 4 of --rooms rooms (and `general`, auto-joined); together
              they send --rate messages/s (a `ref` on each; 5 % to general),
              `typing` before 30 % of them, and now and then (each about
              every 300 s, 30 s, 15 s, 30 s, 90 s) `history` (some pages
              with `before`), `resume` from their last id, `read`,
              `presence`, and a leave/join of another room. Closed: they
              reconnect, rejoin, resume every room from their last id, and
              resend what was not acknowledged (same `ref`).
  feeders     4 connections sending 3,900-character messages to the room
              `soak-hot` at 2 messages/s each (the slow consumer's food).
  churners    --churners concurrent loops: connect (to either replica, from
              one of 64 loopback addresses), join 1-3 rooms, sometimes resume
              from an id seen 5-30 s ago (which joins), send 1-2 messages,
              maybe typing (50 %) / history (5 %) / presence (20 %), stay
              0.5-3 s, then leave and
              close (50 %), close without leaving (30 %) or reset the TCP
              connection (SO_LINGER 0, 20 %).
  HTTP        GET /api/rooms/<room>/messages (Bearer) every 20 s and
              POST /api/auth/login every 15 s (the new token is used by the
              churners from then on).
  slow        a client that stops reading (SO_RCVBUF 4 KiB, never reads)
              and sends `leave`, `join` and `resume` since 0-0 of
              `soak-hot` (every message of the room the stream holds) 1.8
              times a second, under its frame budgets, until the host
              closes it
              as a slow consumer (send queue over its bound): at 15 % of
              the run on replica 0, then at 35 % on replica 1. Each must be
              closed within --slow-timeout s, and counted by its replica
              (aurora_closes_total{reason="slow_consumer"}). Its close frame
              (1008) waits behind the unread data, so the client sees the
              TCP connection end, not the code.
  Redis       killed (SIGKILL) at --restart-at of the run and restarted on
              the same port --redis-outage s later, empty (no persistence).
              Clients retry what got `unavailable`, `rate_limited` or
              `rate_limit_unavailable`, and reconnect; the replicas must be
              ready again, with both chat and ingest reconnected and live
              messages flowing on each, within --recover-timeout s.

History store: FerretDB 1.24 on SQLite answers a history page by reading
the whole collection (it pushes no filter down to SQLite): measured here,
~1 s per page at 5,000 stored messages and ~6 s at 30,000, linear, where
MongoDB reads the page from the {roomId, createdAt} index. Left alone, the
soak's 27,000 messages would make it a benchmark of that scan (history
requests queue up behind it: a finding of its own, see docs/performance.md).
So the soak deletes messages older than --history-keep s (default 60) from
the collection every 15 s, like a retention job, and keeps history requests
at ~0.35/s in all.

Every --interval s (default 10; duration/30 when the run is shorter than
5 minutes, so that the fit has ~15 points) it records per replica: RSS and
threads (/proc/PID/status), open descriptors (/proc/PID/fd), every gauge of
GET /metrics (aurora_heap_in_use_bytes, aurora_heap_free_bytes,
aurora_connections, aurora_pending_messages, aurora_ingest_consumer_lag,
aurora_ingest_pending, aurora_ingest_dead_letter_length, ...) and a few
counters; and for Redis: INFO memory, DBSIZE, XLEN of the stream and of
the dead-letter stream. Samples go to .cache/bench/soak-<UTC time>.jsonl
(one line per sample; a first "run" line and a last "summary" line), the
replicas' logs beside it, and a PNG of RSS, heap and descriptors per
replica to --plot.

Verdict (exit 1 on any failure). For each checked series, a least-squares
line is fitted to the samples of the last half of the run; its slope,
extrapolated to one hour, is the series' growth. A series fails when the
lower end of that growth's 95 % confidence interval (slope - t * standard
error) is above its tolerance: max(rel * level, floor) per hour, level
being the series' mean over the last half (TOLERANCES below gives rel and
floor and says why). So a steady series passes whatever its noise, and a
series whose growth would add more than rel of itself in an hour fails
once the samples show it beyond doubt. The stream must also stay under its
configured cap (stream_maxlen + 250: `MAXLEN ~` trims whole nodes of 100
entries). Runs shorter than 5 minutes (the smoke) print the slopes without
judging them: their last half is still warm-up. Also failures, whatever
the duration: a replica that exits, a slow consumer not closed in time or
not counted, a replica not recovered after the Redis restart, no message
acknowledged in the last 10 % of the run, a replica not back to 0
connections and 0 pending messages within 20 s after the clients left, a
generator that does not report.

The Redis restart and the slow consumers happen in the first half: the
fitted half is steady mixed traffic after them, so what they leave behind
must have stopped growing, and their transients (a slow consumer's queue
of up to send_queue_max_bytes, freed memory malloc keeps) are not read as
a trend.

Retention windows scale with the run so that each reaches its steady state
well before the last half: the chat stream keeps 5 % of the run's messages
(stream_maxlen, at least 600) and `ref`s are remembered for 5 % of the run
(dedup_window_s, at least 3 s); the Redis restart empties both at 25 %.

    .cache/venv/bin/python tests/bench/soak_bench.py                  # 10 minutes
    .cache/venv/bin/python tests/bench/soak_bench.py --duration 60    # smoke
    .cache/venv/bin/python tests/bench/soak_bench.py --analyze .cache/bench/soak-XXXX.jsonl

Everything it starts is stopped by PID (SIGTERM, then SIGKILL), also on
Ctrl-C and SIGTERM; the servers also die with it (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))

from run_bench import (READY_DEADLINE_S, git_revision, kill_leftover_children, machine,  # noqa: E402
                       raise_open_files)

DEFAULT_PLOT = REPO_ROOT / "docs" / "images" / "soak.png"
RESULTS_DIR = REPO_ROOT / ".cache" / "bench"
# The soak's HS256 secret (loopback only).
SOAK_SECRET = "aurora-soak-only-" + "5e1d7c3b9a8f6e4d2c1b0a9f8e7d6c5b"
STREAM = "chat:messages"
DEAD_STREAM = "chat:messages:dead"
HOT_ROOM = "soak-hot"
REPLICAS = 2
START_MARGIN_S = 3.0      # the generator connects before the clock starts
GENERATOR_SLACK_S = 45.0  # a generator not done this long after the end is killed
# The slow consumers start at these fractions of the run, one per replica.
# In the first half, like the Redis restart: each leaves a transient of up to
# send_queue_max_bytes in its replica's heap, and malloc keeps the freed
# memory; a step like that inside the fitted half would read as growth.
SLOW_AT = (0.15, 0.35)
# Connections feeding the room the slow consumers resume: the kernel takes
# ~4 MB of unread data (tcp_wmem's maximum) before the host's queue grows to
# its 4 MB bound, so each resume should bring a lot.
FEEDERS = 4
DRAIN_TIMEOUT_S = 20.0
# Shorter runs (the smoke) print the slopes without judging them: their last
# half is still the allocator's and caches' warm-up, not a trend.
MIN_JUDGED_S = 300.0    # after the clients left: back to 0 connections and 0 pending within this

# Tolerated growth per hour: (rel, floor) -> max(rel * level, floor), where
# level is the series' mean over the last half. rel 25 %: a process that
# gains a quarter of its size per hour of steady traffic is leaking whatever
# the cause (at the default traffic that is ~1.5 KB/s on a 20 MB heap: a
# leak of ~0.6 KB per connection or ~40 B per message). The floors keep
# series that sit near zero (queues, descriptors of an idle replica) from
# failing on a few units: each is far below what a per-event leak at this
# traffic would add in an hour (~9,000 connections, ~150,000 messages).
MiB = 1 << 20
TOLERANCES = {
    "rss_bytes": (0.25, 8 * MiB),
    "heap_in_use_bytes": (0.25, 8 * MiB),
    # glibc's held free memory: the host trims it when it has grown by 8 MB
    # (aurora_heap_trims_total), so it moves in steps of up to 8 MB.
    "heap_free_bytes": (0.50, 16 * MiB),
    "fds": (0.25, 50),
    "threads": (0.0, 2),
    "connections": (0.25, 50),
    "pending_messages": (0.25, 100),
    "ingest_consumer_lag": (0.25, 2000),
    "ingest_pending": (0.25, 2000),
    "ingest_dead_letter_length": (0.0, 100),
    "redis.used_memory": (0.25, 8 * MiB),
    "redis.keys": (0.25, 1000),
    "redis.stream_len": (0.25, 1000),
    "redis.dead_len": (0.0, 100),
}
# Recorded from /metrics for the report (not judged): counters.
COUNTERS = ("aurora_connections_accepted_total", "aurora_frames_in_total", "aurora_frames_out_total",
            "aurora_closes_total", "aurora_heap_trims_total", "aurora_chat_messages_total",
            "aurora_chat_send_errors_total", "aurora_ingest_persisted_total", "aurora_auth_handshakes_total",
            "aurora_ratelimit_limited_total", "aurora_ratelimit_redis_errors_total",
            "aurora_ingest_history_requests_total", "aurora_chat_resumes_total", "aurora_pending_refused_total",
            "aurora_frames_refused_total")
# Histograms whose _sum and _count are recorded (not judged).
HISTOGRAMS = ("aurora_ingest_history_seconds", "aurora_chat_send_seconds", "aurora_ratelimit_check_latency_seconds")
# Two-sided 95 % quantiles of Student's t by degrees of freedom.
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
        11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11, 18: 2.10, 19: 2.09, 20: 2.09,
        22: 2.07, 24: 2.06, 26: 2.06, 28: 2.05, 30: 2.04, 40: 2.02, 60: 2.00, 120: 1.98}


def t95(df: int) -> float:
    for k in sorted(_T95):
        if df <= k:
            return _T95[k]
    return 1.96


def username(i: int) -> str:
    return f"soak_u{i:03d}"


def password(i: int) -> str:
    return f"soak-password-{i:03d}"


# =============================================================================
# The traffic generator (a child process)
# =============================================================================

RETRY_CODES = {"unavailable", "rate_limit_unavailable", "busy", "internal"}
MAX_ATTEMPTS = 20


class Gen:
    """Shared state of the generator: the spec, counters, per-second buckets."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.rnd = random.Random(spec["seed"])
        self.t0 = spec["t0"]
        self.end = spec["t0"] + spec["duration"]
        self.ports = spec["ports"]
        self.tokens: dict[int, str] = {int(k): v for k, v in spec["tokens"].items()}
        self.c: Counter = Counter()
        self.buckets: dict[int, Counter] = defaultdict(Counter)
        self.recent: deque = deque(maxlen=4000)  # (time, room, id) of live messages seen
        self.latency_ms: list[tuple[float, float, int]] = []  # (send time - t0, ms, send ns)
        self.retried: set[int] = set()  # send ns of messages sent more than once
        self.slow: list[dict] = []
        self.seq = 0

    def now(self) -> float:
        return time.time()

    def rel(self) -> float:
        return time.time() - self.t0

    def count(self, key: str, n: int = 1) -> None:
        self.c[key] += n
        self.buckets[int(self.rel())][key] += n

    def next_ref(self, who: str) -> str:
        self.seq += 1
        return f"{who}.{self.seq}"

    def running(self) -> bool:
        return time.time() < self.end


class Client:
    """One WebSocket connection; its sender state (pending refs, last ids)
    lives in `state`, which outlives reconnections."""

    def __init__(self, g: Gen, who: str, replica: int, user: int, state: dict | None = None):
        self.g, self.who, self.replica, self.user = g, who, replica, user
        self.state = state if state is not None else {"pending": {}, "last_id": {}}
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.closed = asyncio.Event()
        self.resuming: set[str] = set()
        self.joined: set[str] = {"general"}  # auto-joined at connect
        self.join_event = asyncio.Event()

    async def open(self, addr: str) -> None:
        from websockets.asyncio.client import connect
        token = self.g.tokens[self.user]
        self.ws = await connect(f"ws://127.0.0.1:{self.g.ports[self.replica]}/",
                                subprotocols=[f"Bearer.{token}"], ping_interval=None, max_size=None,
                                compression=None, open_timeout=10, close_timeout=3, local_addr=(addr, 0))
        self.g.count(f"connects:r{self.replica}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    continue
                for line in raw.split("\n"):
                    if line:
                        self._handle(json.loads(line))
        except ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - counted, the client reconnects
            self.g.count(f"reader_error:{type(e).__name__}")
        finally:
            self.closed.set()

    def _handle(self, m: dict) -> None:
        g, t = self.g, m.get("type")
        if t == "message":
            room, mid = m.get("room"), m.get("id")
            g.count(f"deliveries:r{self.replica}")
            last = self.state["last_id"].get(room)
            if mid and (last is None or stream_id_key(mid) > stream_id_key(last)):
                self.state["last_id"][room] = mid
            if room not in self.resuming:
                parts = str(m.get("text", "")).split(" ", 3)
                if len(parts) >= 3 and parts[0] == "soak" and parts[2].isdigit():
                    if len(g.latency_ms) < 1_000_000:
                        sent_ns = int(parts[2])
                        g.latency_ms.append((round(sent_ns / 1e9 - g.t0, 2), (time.time_ns() - sent_ns) / 1e6, sent_ns))
                if mid:
                    g.recent.append((time.time(), room, mid))
        elif t == "ack":
            if "read" in m:
                g.count("read_acks")
                return
            p = self.state["pending"].pop(str(m.get("ref")), None)
            if p is not None:
                g.count("acked_dup" if m.get("duplicate") else "acked")
                g.count(f"acked:r{self.replica}")
        elif t in ("error", "rate_limited"):
            code = m.get("code") if t == "error" else f"rate_limited:{m.get('limit')}"
            g.count(f"err:{code}")
            ref = m.get("ref")
            p = self.state["pending"].get(str(ref)) if ref is not None else None
            if p is not None and code == "not_member":  # never sent to a room it left: a client bug
                self.state["pending"].pop(str(ref))
                g.count("dropped_not_member")
                return
            if p is not None and (t == "rate_limited" or code in RETRY_CODES):
                delay = max(m.get("retry_after_ms", 0) / 1000, min(5.0, 0.25 * 2 ** p["attempts"]))
                p["due"] = time.time() + delay
        elif t == "resumed":
            self.resuming.discard(m.get("room"))
            self.joined.add(m.get("room"))
            self.join_event.set()
            g.count("resumed")
            g.count("resumed_msgs", int(m.get("count") or 0))
        elif t in ("joined", "left", "history", "presence", "typing"):
            g.count(f"got:{t}")
            if t == "joined":
                self.joined.add(m.get("room"))
                self.join_event.set()
        else:
            g.count(f"got:{t}")

    async def wait_joined(self, rooms: list[str], timeout: float) -> None:
        """Until every room is joined (its `joined` or `resumed` came), the
        connection closed, or timeout: messages are sent to joined rooms only."""
        deadline = time.time() + timeout
        while not set(rooms) <= self.joined and not self.closed.is_set() and time.time() < deadline:
            self.join_event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.join_event.wait(), max(0.01, deadline - time.time()))
        if not set(rooms) <= self.joined:
            self.g.count("join_timeouts")

    def leave(self, room: str) -> None:
        """Forgets a room being left: no more sends, pending messages dropped."""
        self.joined.discard(room)
        for ref in [r for r, p in self.state["pending"].items() if p["room"] == room]:
            self.state["pending"].pop(ref)
            self.g.count("dropped_on_leave")

    async def send(self, obj: dict) -> None:
        await self.ws.send(json.dumps(obj, separators=(",", ":")))

    async def message(self, room: str, text_len: int = 0) -> None:
        ref = self.g.next_ref(self.who)
        pad = "x" * max(0, text_len - 40) if text_len else "words " * self.g.rnd.randint(1, 30)
        text = f"soak {self.who} {time.time_ns()} {pad}".strip()
        self.state["pending"][ref] = {"room": room, "text": text, "attempts": 1, "due": time.time() + 15.0}
        self.g.count("sent")
        await self.send({"type": "message", "room": room, "text": text, "ref": ref})

    async def resend_due(self, all_: bool = False) -> None:
        now = time.time()
        for ref, p in list(self.state["pending"].items()):
            if not all_ and p["due"] > now:
                continue
            if p["attempts"] >= MAX_ATTEMPTS:
                self.state["pending"].pop(ref)
                self.g.count("gave_up")
                continue
            p["attempts"] += 1
            p["due"] = now + 15.0  # no answer in 15 s: send again
            with contextlib.suppress(ValueError, IndexError):
                self.g.retried.add(int(p["text"].split(" ", 3)[2]))
            self.g.count("retries")
            await self.send({"type": "message", "room": p["room"], "text": p["text"], "ref": ref})

    async def resume(self, room: str, since: str) -> None:
        self.resuming.add(room)
        await self.send({"type": "resume", "room": room, "since": since})

    async def close(self, how: str = "clean") -> None:
        if self.ws is None:
            return
        if how == "reset":
            with contextlib.suppress(Exception):
                sock = self.ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.ws.transport.abort()
            self.g.count("closes_reset")
        else:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
            self.g.count("closes_clean")
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


def stream_id_key(sid: str) -> tuple[int, int]:
    a, _, b = str(sid).partition("-")
    try:
        return int(a), int(b or 0)
    except ValueError:
        return (0, 0)


async def sleep_or_closed(c: Client, delay: float) -> bool:
    """Sleeps `delay` s; True if the connection closed meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(c.closed.wait(), max(0.0, delay))
    return c.closed.is_set()


async def long_lived(g: Gen, who: str, replica: int, user: int, addr: str, rooms: list[str], interval: float,
                     text_len: int = 0, extras: bool = True, jitter: bool = True) -> None:
    """A resident (extras) or a feeder: stays connected, sends every
    `interval` s on average, reconnects with backoff when closed."""
    rnd = g.rnd
    state = {"pending": {}, "last_id": {}}
    rooms = list(rooms)
    backoff, first = 0.5, True
    # spread the first connects over the start margin
    await asyncio.sleep(rnd.uniform(0, START_MARGIN_S - 0.5))
    while g.running():
        c = Client(g, who, replica, user, state)
        try:
            await c.open(addr)
            backoff = 0.5
            for r in rooms:
                if not first and r in state["last_id"]:
                    await c.resume(r, state["last_id"][r])
                else:
                    await c.send({"type": "join", "room": r})
            await c.wait_joined(rooms, 5.0)
            if not first:
                g.count("reconnects")
                await c.resend_due(all_=True)
            first = False
            while g.running():
                d = rnd.expovariate(1 / interval) if jitter else interval
                if await sleep_or_closed(c, min(d, max(0.0, g.end - time.time()))):
                    break
                if not g.running():
                    break
                await c.resend_due()
                ok = [x for x in rooms if x in c.joined] or ["general"]
                room = "general" if extras and rnd.random() < 0.05 else rnd.choice(ok)
                if extras and rnd.random() < 0.3:
                    await c.send({"type": "typing", "room": room})
                    g.count("typing_sent")
                await c.message(room, text_len)
                if not extras:
                    continue
                # per-action probabilities per message (~interval s apart)
                p = interval
                r = rnd.choice(ok)
                if rnd.random() < p / 300:
                    req = {"type": "history", "room": r, "limit": rnd.randint(10, 100)}
                    if rnd.random() < 0.3 and state["last_id"].get(r):
                        req["before"] = state["last_id"][r]
                    await c.send(req)
                    g.count("history_sent")
                if rnd.random() < p / 30 and state["last_id"].get(r) and r not in c.resuming:
                    await c.resume(r, state["last_id"][r])
                    g.count("resume_sent")
                if rnd.random() < p / 15 and state["last_id"].get(r):
                    await c.send({"type": "read", "room": r, "id": state["last_id"][r]})
                    g.count("read_sent")
                if rnd.random() < p / 30:
                    await c.send({"type": "presence", "room": r})
                    g.count("presence_sent")
                if rnd.random() < p / 90:
                    old = rnd.choice(rooms)
                    new = rnd.choice([x for x in g.spec["rooms"] if x not in rooms])
                    c.leave(old)
                    await c.send({"type": "leave", "room": old})
                    await c.send({"type": "join", "room": new})
                    rooms[rooms.index(old)] = new
                    state["last_id"].pop(old, None)
                    g.count("rotations")
        except Exception as e:  # noqa: BLE001 - any failure: count, back off, reconnect
            g.count(f"resident_error:{type(e).__name__}")
        finally:
            if g.running():
                g.count(f"lost_connection:r{replica}")
            await c.close("clean")
        if g.running():
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)
    left = len(state["pending"])
    if left:
        g.count("unacked_at_end", left)


async def churner(g: Gen, j: int) -> None:
    rnd = g.rnd
    pool = g.spec["churn_users"]
    await asyncio.sleep(rnd.uniform(0, START_MARGIN_S))
    k = 0
    while time.time() < g.end - 1.0:
        k += 1
        replica = rnd.randrange(REPLICAS)
        user = rnd.choice(pool)
        addr = f"127.0.2.{(j * 977 + k) % 64 + 1}"
        c = Client(g, f"c{j}", replica, user)
        how = "clean"
        try:
            await c.open(addr)
            rooms = rnd.sample(g.spec["rooms"], rnd.randint(1, 3))
            for r in rooms:
                await c.send({"type": "join", "room": r})
            await c.wait_joined(rooms, 3.0)
            if rnd.random() < 0.5 and g.recent:
                now = time.time()
                olds = [x for x in list(g.recent)[-2000:] if 5 <= now - x[0] <= 30]
                if olds:
                    _, room, mid = rnd.choice(olds)
                    await c.resume(room, mid)
                    g.count("resume_sent")
            for _ in range(rnd.randint(1, 2)):
                room = rnd.choice([x for x in rooms if x in c.joined] or ["general"])
                if rnd.random() < 0.5:
                    await c.send({"type": "typing", "room": room})
                    g.count("typing_sent")
                await c.message(room)
            if rnd.random() < 0.05:
                await c.send({"type": "history", "room": rnd.choice(rooms), "limit": 50})
                g.count("history_sent")
            if rnd.random() < 0.2:
                await c.send({"type": "presence", "room": rnd.choice(rooms)})
                g.count("presence_sent")
            stay = time.time() + rnd.uniform(0.5, 3.0)
            while time.time() < stay and not c.closed.is_set():
                await sleep_or_closed(c, min(0.5, stay - time.time()))
                if not c.closed.is_set():
                    await c.resend_due()
            g.count("churn_unacked", len(c.state["pending"]))
            x = rnd.random()
            if x < 0.5:
                for r in rooms:
                    await c.send({"type": "leave", "room": r})
                await asyncio.sleep(0.05)
            elif x >= 0.8:
                how = "reset"
        except Exception as e:  # noqa: BLE001 - a refused or dropped churner tries again
            g.count(f"churn_error:{type(e).__name__}")
            await asyncio.sleep(1.0)
        finally:
            await c.close(how)
        g.count("churn_cycles")


async def http_request(port: int, method: str, path: str, body: bytes | None = None,
                       headers: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request (Connection: close) to 127.0.0.1:port."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, data = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), data


async def http_loop(g: Gen) -> None:
    rnd = g.rnd
    next_hist, next_login = time.time() + 20, time.time() + 15
    while g.running():
        await asyncio.sleep(max(0.0, min(next_hist, next_login, g.end) - time.time()))
        if not g.running():
            break
        port = g.ports[rnd.randrange(REPLICAS)]
        try:
            if time.time() >= next_hist:
                next_hist += 20
                user = rnd.choice(g.spec["resident_users"])
                status, _ = await http_request(port, "GET", f"/api/rooms/{rnd.choice(g.spec['rooms'])}/messages?limit=50",
                                               headers={"Authorization": f"Bearer {g.tokens[user]}"})
                g.count(f"http_history:{status}")
            if time.time() >= next_login:
                next_login += 15
                user = rnd.choice(g.spec["churn_users"])
                body = json.dumps({"username": username(user), "password": password(user)}).encode()
                status, data = await http_request(port, "POST", "/api/auth/login", body=body)
                g.count(f"http_login:{status}")
                if status == 200:
                    g.tokens[user] = json.loads(data)["token"]
        except Exception as e:  # noqa: BLE001 - counted (Redis outage, overload)
            g.count(f"http_error:{type(e).__name__}")


def tcp_state(sock: socket.socket) -> int:
    """tcpi_state of TCP_INFO (1 ESTABLISHED, 7 CLOSE, 8 CLOSE_WAIT)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def slow_consumer(port: int, token: str, timeout_s: float) -> dict:
    """A client that never reads: fills its own send queue with resume
    answers (within the frame budget) until the host closes it.
    Returns what happened (seconds to close, close code found, requests)."""
    from aurora_host import OP_CLOSE, RawWebSocket, close_code
    out = {"port": port, "closed_after_s": None, "close_code": None, "requests": 0, "how": None}
    t0 = time.time()
    try:
        ws = RawWebSocket(port, path=f"/?token={token}", rcvbuf=4096, timeout=10)
    except Exception as e:  # noqa: BLE001
        out["how"] = f"connect failed: {type(e).__name__}: {e}"
        return out
    try:
        ws.send_json({"type": "join", "room": HOT_ROOM})
        while time.time() - t0 < timeout_s:
            time.sleep(0.55)  # 1.8 resumes/s: under their 2/s budget (join and leave: 5/s)
            if tcp_state(ws.sock) != 1:
                out["how"] = f"tcp state {tcp_state(ws.sock)}"
                break
            # A resume replays up to the connection's join point: leave and join
            # again first, so that it brings every message of the room the
            # stream holds now.
            try:
                ws.sock.settimeout(2)
                ws.send_json({"type": "leave", "room": HOT_ROOM})
                ws.send_json({"type": "join", "room": HOT_ROOM})
                ws.send_json({"type": "resume", "room": HOT_ROOM, "since": "0-0"})
                out["requests"] += 1
            except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError) as e:
                out["how"] = f"send: {type(e).__name__}"
                break
        else:
            out["how"] = "timeout"
        if out["how"] != "timeout":
            out["closed_after_s"] = round(time.time() - t0, 2)
        # what it had been sent, as far as the kernel kept it (~4 MB): answers by type
        frames, end = ws.drain_until_closed(5)
        codes = [close_code(p) for op, p in frames if op == OP_CLOSE]
        out["close_code"] = codes[0] if codes else None
        kinds: Counter = Counter()
        for op, p in frames:
            if op == 1:
                with contextlib.suppress(ValueError):
                    m = json.loads(p)
                    kinds[m.get("type", "?") + (":" + str(m.get("code")) if m.get("type") == "error" else "")] += 1
                    if m.get("type") == "resumed":
                        kinds["resumed_msgs"] += m.get("count", 0)
        out["drained"] = {"frames": len(frames), "bytes": sum(len(p) for _, p in frames), "end": end,
                          "types": dict(kinds)}
    except Exception as e:  # noqa: BLE001
        out["how"] = f"error: {type(e).__name__}: {e}"
    finally:
        ws.close()
    return out


async def slow_loop(g: Gen) -> None:
    s = g.spec
    for k, frac in enumerate(s["slow_at"]):
        at = g.t0 + frac * s["duration"]
        await asyncio.sleep(max(0.0, at - time.time()))
        replica = k % REPLICAS
        r = await asyncio.to_thread(slow_consumer, g.ports[replica], g.tokens[s["slow_user"]], s["slow_timeout"])
        r |= {"replica": replica, "started_s": round(at - g.t0, 1)}
        g.slow.append(r)
        g.count("slow_cycles")


async def generator_main(spec: dict) -> dict:
    g = Gen(spec)
    n = spec["residents"]
    interval = n / spec["rate"]
    tasks = [long_lived(g, f"r{i}", i % REPLICAS, spec["resident_users"][i], f"127.0.1.{i % 16 + 1}",
                        g.rnd.sample(spec["rooms"], 4), interval) for i in range(n)]
    tasks += [long_lived(g, f"f{k}", k % REPLICAS, u, "127.0.3.1", [HOT_ROOM], 0.5,
                         text_len=3900, extras=False, jitter=False) for k, u in enumerate(spec["feeder_users"])]
    tasks += [churner(g, j) for j in range(spec["churners"])]
    tasks += [http_loop(g), slow_loop(g)]
    await asyncio.gather(*tasks)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # live latency of messages sent once (a retry waits retry_after_ms or a backoff), away from
    # the Redis outage; and of every message sent around the outage
    r0 = spec["restart_at"] * spec["duration"]
    lat = sorted(ms for t, ms, ns in g.latency_ms
                 if not r0 - 2 <= t <= r0 + spec["redis_outage"] + 10 and ns not in g.retried)
    around = sorted(ms for t, ms, _ in g.latency_ms if r0 - 2 <= t <= r0 + spec["redis_outage"] + 10)

    def pct(xs: list, q: float):
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else None
    return {"counters": dict(g.c), "buckets": {str(k): dict(v) for k, v in sorted(g.buckets.items())},
            "slow": g.slow,
            "latency_ms": {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": pct(lat, 1.0),
                           "outage": {"n": len(around), "p50": pct(around, 0.5), "p99": pct(around, 0.99),
                                      "max": pct(around, 1.0)}},
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 1)}


def generator_child(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out = asyncio.run(generator_main(spec))
    Path(spec["out"]).write_text(json.dumps(out))


# =============================================================================
# The services and the sampler (the main process)
# =============================================================================

def host_config(build: Path, redis_url: str, mongo_url: str, stream_maxlen: int, dedup_s: int) -> dict:
    """samples/config/all-in-one.json's pipeline with the soak's changes:
    registrations not throttled per address (the soak registers its users
    from one address), chat's retention windows scaled to the run."""
    p = build / "plugins"
    return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url}, "mongo": {"url": mongo_url},
            "jwt": {"secret": SOAK_SECRET},
            "plugins": [{"name": "auth", "path": str(p / "auth.so"), "config": {"register_max_per_addr": 0}},
                        {"name": "ratelimit", "path": str(p / "ratelimit.so"), "config": {}},
                        {"name": "chat", "path": str(p / "chat.so"),
                         "config": {"stream_maxlen": stream_maxlen, "dedup_window_s": dedup_s}},
                        {"name": "ingest", "path": str(p / "ingest.so"), "config": {"workers": 1}}]}


@contextlib.contextmanager
def services(build: Path, stream_maxlen: int, dedup_s: int, logs_to: Path):
    """Redis, FerretDB and two replicas, ready; stopped by PID on the way out
    (the replicas' logs are copied to logs_to-replica<i>.log)."""
    from aurora_host import AuroraHost
    from real_servers import FerretDbServer, RedisServer
    redis = ferret = None
    hosts: list = []
    workdir = Path(tempfile.mkdtemp(prefix="aurora-soak-"))
    try:
        raise_open_files()
        redis = RedisServer.start()
        ferret = FerretDbServer.start()
        cfg = host_config(build, redis.url, ferret.url(), stream_maxlen, dedup_s)
        for i in range(REPLICAS):
            h = AuroraHost.start(build / "host" / "aurora-host", workdir / f"replica{i}", cfg)
            hosts.append(h)
            deadline = time.monotonic() + READY_DEADLINE_S * 3
            while h.get("/ready").status != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"soak: replica {i} not ready:\n{h.stderr_tail()}")
                time.sleep(0.05)  # readiness poll, bounded
        print(f"soak: redis-server pid {redis.proc.proc.pid} port {redis.port}, ferretdb pid "
              f"{ferret.proc.proc.pid}, aurora-host pids {', '.join(str(h.pid) for h in hosts)} "
              f"ports {', '.join(str(h.port) for h in hosts)}", flush=True)
        yield {"redis": redis, "ferret": ferret, "hosts": hosts}
    finally:
        for i, h in enumerate(hosts):
            code, killed = h.stop()
            if code != 0 or killed:
                print(f"soak: replica {i} exited {code}{' (killed)' if killed else ''}; stderr tail:\n"
                      f"{h.stderr_tail(15)}", file=sys.stderr)
            with contextlib.suppress(OSError):
                shutil.copy(h.stderr_path, f"{logs_to}-replica{i}.log")
        for s in (redis, ferret):
            if s is not None:
                s.stop()
        kill_leftover_children()
        shutil.rmtree(workdir, ignore_errors=True)


def register_users(port: int, n: int) -> dict[int, str]:
    """Registers users 0..n-1 and logs each in: user -> token."""
    from aurora_host import http_request as http
    tokens = {}
    for i in range(n):
        body = json.dumps({"username": username(i), "password": password(i)}).encode()
        for _ in range(50):
            r = http(port, "/api/auth/register", method="POST", body=body,
                     headers={"Content-Type": "application/json"}, timeout=30)
            if r.status in (200, 409):
                break
            time.sleep(0.2)  # 503 (queue) or 429: bounded retries
        else:
            raise SystemExit(f"soak: cannot register {username(i)}: {r.status} {r.body[:200]!r}")
        for _ in range(50):
            r = http(port, "/api/auth/login", method="POST", body=body,
                     headers={"Content-Type": "application/json"}, timeout=30)
            if r.status == 200:
                tokens[i] = r.json()["token"]
                break
            time.sleep(0.2)  # 503/429 while the auth workers are busy: 50 bounded retries
        else:
            raise SystemExit(f"soak: cannot log in {username(i)}: {r.status} {r.body[:200]!r}")
    return tokens


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_bytes"] = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = stat[stat.rfind(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def scrape(host) -> tuple[dict, dict]:
    """(gauges, counters) of GET /metrics: gauges by name without the
    aurora_ prefix (label sets summed); the COUNTERS by name and labels."""
    from aurora_host import http_request as http
    from prometheus_client.parser import text_string_to_metric_families
    gauges, counters = {}, {}
    try:
        r = http(host.port, "/metrics", timeout=5)
    except OSError:
        return gauges, counters
    if r.status != 200:
        return gauges, counters
    for fam in text_string_to_metric_families(r.body.decode()):
        if fam.type == "gauge":
            name = fam.name[len("aurora_"):] if fam.name.startswith("aurora_") else fam.name
            gauges[name] = sum(s.value for s in fam.samples)
        elif fam.type == "histogram" and fam.name in HISTOGRAMS:
            for s in fam.samples:
                if s.name.endswith(("_sum", "_count")):
                    counters[s.name[len("aurora_"):]] = s.value
        elif fam.type == "counter" and fam.name + "_total" in COUNTERS:
            for s in fam.samples:
                if s.name.endswith("_total"):
                    lab = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    counters[s.name[len("aurora_"):] + (f"{{{lab}}}" if lab else "")] = s.value
    return gauges, counters


def redis_sample(redis) -> dict:
    import redis as redis_py
    out: dict = {"pid": redis.proc.proc.pid if redis.proc else None}
    try:
        r = redis_py.Redis(host="127.0.0.1", port=redis.port, socket_timeout=2, socket_connect_timeout=1)
        try:
            mem = r.info("memory")
            out["used_memory"] = mem["used_memory"]
            out["used_memory_rss"] = mem["used_memory_rss"]
            out["keys"] = r.dbsize()
            out["stream_len"] = r.xlen(STREAM)
            out["dead_len"] = r.xlen(DEAD_STREAM)
        finally:
            r.close()
    except (redis_py.RedisError, OSError) as e:
        out["error"] = f"{type(e).__name__}"
    return out


def take_sample(t_rel: float, hosts: list, redis, ferret) -> dict:
    started = time.time()
    reps = []
    for i, h in enumerate(hosts):
        rep = {"replica": i, "pid": h.pid, "alive": h.running()}
        rep |= proc_status(h.pid)
        rep["cpu_s"] = cpu_seconds(h.pid)
        gauges, counters = scrape(h)
        rep["gauges"] = gauges
        rep["counters"] = counters
        reps.append(rep)
    red = redis_sample(redis)
    return {"kind": "sample", "t": round(t_rel, 2), "took_s": round(time.time() - started, 3), "replicas": reps,
            "redis": red, "ferretdb": proc_status(ferret.proc.proc.pid) | {"cpu_s": cpu_seconds(ferret.proc.proc.pid)}}


def drain_check(hosts: list, redis, ferret, t0: float, out, timeout_s: float) -> str | None:
    """After the clients are gone every replica must come back to zero
    connections and zero pending messages: samples every second (written as
    "drain" lines) until it does, or returns what is left after timeout_s."""
    deadline = time.time() + timeout_s
    while True:
        s = take_sample(time.time() - t0, hosts, redis, ferret) | {"kind": "drain"}
        out.write(json.dumps(s) + "\n")
        left = {r["replica"]: (r["gauges"].get("connections"), r["gauges"].get("pending_messages"))
                for r in s["replicas"]}
        if all(c == 0 and p == 0 for c, p in left.values()):
            heap = ", ".join(f"r{r['replica']} {r['gauges'].get('heap_in_use_bytes', 0) / MiB:.2f} MiB in use, "
                             f"RSS {r.get('rss_bytes', 0) / MiB:.1f} MiB" for r in s["replicas"])
            print(f"soak: after the run, every replica is back to 0 connections and 0 pending messages "
                  f"(t = {s['t']:.0f} s): {heap}", flush=True)
            return None
        if time.time() > deadline:
            return (f"{timeout_s:.0f} s after the clients left, (connections, pending messages) per replica: "
                    f"{left}")
        time.sleep(1.0)  # polling, bounded by the deadline


class Pruner(threading.Thread):
    """Deletes messages older than keep_s from the history collection every
    interval_s (FerretDB/SQLite scans the whole collection per history page:
    this keeps that scan bounded). No child processes: safe on a thread."""

    def __init__(self, url: str, keep_s: float, interval_s: float = 15.0):
        super().__init__(daemon=True, name="soak-pruner")
        self.url, self.keep_s, self.interval_s = url, keep_s, interval_s
        self.stop_event = threading.Event()
        self.deleted = 0
        self.runs = 0
        self.seconds = 0.0
        self.errors = 0

    def run(self) -> None:
        import datetime

        import pymongo
        client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=2000, socketTimeoutMS=60000)
        try:
            while not self.stop_event.wait(self.interval_s):
                cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=self.keep_s)
                t = time.time()
                try:
                    r = client.get_default_database()["messages"].delete_many({"createdAt": {"$lt": cutoff}})
                    self.deleted += r.deleted_count
                except pymongo.errors.PyMongoError:
                    self.errors += 1
                self.runs += 1
                self.seconds += time.time() - t
        finally:
            client.close()

    def stats(self) -> dict:
        return {"runs": self.runs, "deleted": self.deleted, "seconds": round(self.seconds, 2), "errors": self.errors}


def restart_redis(redis, outage_s: float, log: dict) -> None:
    """SIGKILL, wait, start again on the same port (empty: no persistence)."""
    t = time.time()
    log["killed_at"] = t
    log["old_pid"] = redis.proc.proc.pid
    redis.proc.proc.kill()
    redis.proc.proc.wait()
    redis.proc.running()  # unregisters it
    time.sleep(outage_s)
    for attempt in range(3):
        try:
            redis.restart()
            break
        except Exception as e:  # noqa: BLE001 - the port taken meanwhile: reported, retried
            log.setdefault("errors", []).append(f"{type(e).__name__}: {e}")
            print(f"soak: redis restart attempt {attempt + 1} failed: {e}", file=sys.stderr, flush=True)
            time.sleep(0.5)  # before the next of 3 bounded attempts
    log["back_at"] = time.time()
    log["new_pid"] = redis.proc.proc.pid if redis.proc and redis.proc.running() else None
    print(f"soak: redis killed (pid {log['old_pid']}) and {'restarted as pid ' + str(log['new_pid']) if log['new_pid'] else 'NOT restarted'} "
          f"on port {redis.port} after {log['back_at'] - log['killed_at']:.1f} s", flush=True)


def watch_recovery(hosts: list, since: float, timeout_s: float, log: dict) -> None:
    """Per replica: seconds after Redis is back until /ready is 200 and chat's
    and ingest's redis_up gauges are 1."""
    from aurora_host import http_request as http
    pending = set(range(len(hosts)))
    log["ready_after_s"] = {}
    while pending and time.time() - since < timeout_s:
        for i in sorted(pending):
            try:
                ok = http(hosts[i].port, "/ready", timeout=2).status == 200
                g, _ = scrape(hosts[i])
                ok = ok and g.get("chat_redis_up") == 1 and g.get("ingest_redis_up") == 1
            except OSError:
                ok = False
            if ok:
                log["ready_after_s"][str(i)] = round(time.time() - since, 2)
                pending.discard(i)
        time.sleep(0.2)  # polling readiness, bounded by timeout_s


def run(args) -> int:
    from aurora_host import build_dir
    build = args.build.resolve() if args.build else build_dir()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / f"soak-{stamp}.jsonl"
    duration = float(args.duration)
    interval = args.interval or (10.0 if duration >= 300 else max(1.0, duration / 30))
    total_msgs = (args.rate + 2.0 * FEEDERS) * duration
    stream_maxlen = int(max(600, 0.05 * total_msgs))
    dedup_s = int(max(3, 0.05 * duration))
    residents = args.residents
    users = residents + FEEDERS + 1 + args.churn_users
    spec_users = {"resident_users": list(range(residents)),
                  "feeder_users": list(range(residents, residents + FEEDERS)),
                  "slow_user": residents + FEEDERS, "churn_users": list(range(residents + FEEDERS + 1, users))}
    rooms = [f"soak-r{i:03d}" for i in range(args.rooms)]
    runner = {"command": shlex.join([".cache/venv/bin/python", "tests/bench/soak_bench.py", *sys.argv[1:]])}
    header = {"kind": "run", "time_utc": stamp, "git_revision": git_revision(), "machine": machine(),
              "runner": runner, "params": {"duration": duration, "interval": interval, "rate": args.rate,
                                           "rooms": args.rooms, "residents": residents, "churners": args.churners,
                                           "users": users, "restart_at": args.restart_at,
                                           "redis_outage": args.redis_outage, "slow_at": SLOW_AT,
                                           "slow_timeout": args.slow_timeout, "stream_maxlen": stream_maxlen,
                                           "dedup_window_s": dedup_s, "recover_timeout": args.recover_timeout,
                                           "history_keep": args.history_keep},
              "tolerances": {k: {"rel_per_h": v[0], "floor_per_h": v[1]} for k, v in TOLERANCES.items()}}
    print(f"soak: {runner['command']}\nsoak: {duration:.0f} s, sample every {interval:g} s, "
          f"stream_maxlen {stream_maxlen}, dedup_window_s {dedup_s}; samples -> {out_path}", flush=True)
    failures: list[str] = []
    samples: list[dict] = []
    gen_out = None
    restart_log: dict = {}
    with open(out_path, "w", encoding="utf-8") as out, \
            services(build, stream_maxlen, dedup_s, RESULTS_DIR / f"soak-{stamp}") as sv, \
            tempfile.TemporaryDirectory(prefix="aurora-soak-gen-") as tmp:
        hosts, redis, ferret = sv["hosts"], sv["redis"], sv["ferret"]
        header["pids"] = {"replicas": [h.pid for h in hosts], "redis": redis.proc.proc.pid,
                          "ferretdb": ferret.proc.proc.pid}
        out.write(json.dumps(header) + "\n")
        t_reg = time.time()
        tokens = register_users(hosts[0].port, users)
        print(f"soak: registered and logged in {users} users in {time.time() - t_reg:.1f} s", flush=True)
        t0 = time.time() + START_MARGIN_S
        spec = {"t0": t0, "duration": duration, "ports": [h.port for h in hosts], "tokens": tokens,
                "seed": args.seed, "rate": args.rate, "rooms": rooms, "residents": residents,
                "churners": args.churners, "slow_at": SLOW_AT, "restart_at": args.restart_at,
                "redis_outage": args.redis_outage,
                "slow_timeout": min(args.slow_timeout, 0.6 * duration),
                "out": str(Path(tmp) / "gen.json")} | spec_users
        Path(tmp, "spec.json").write_text(json.dumps(spec))
        from real_servers import _child_setup
        gen = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--generator",
                                str(Path(tmp) / "spec.json")], preexec_fn=_child_setup)
        print(f"soak: generator pid {gen.pid}; clock starts in {START_MARGIN_S:.0f} s", flush=True)
        pruner = Pruner(ferret.url(), args.history_keep) if args.history_keep > 0 else None
        if pruner:
            pruner.start()
        restart_at = t0 + args.restart_at * duration
        restarted, watch_thread = False, None
        k = 0
        try:
            while True:
                t_next = t0 + k * interval
                if t_next > t0 + duration + 0.01:
                    break
                while time.time() < t_next:
                    if not restarted and time.time() >= restart_at:
                        # On this thread: the servers get PR_SET_PDEATHSIG, which fires when the
                        # thread that started them exits. Sampling skips the ticks it takes.
                        restarted = True
                        restart_redis(redis, args.redis_outage, restart_log)
                        watch_thread = threading.Thread(target=watch_recovery, daemon=True, args=(
                            hosts, restart_log.get("back_at", time.time()), args.recover_timeout, restart_log))
                        watch_thread.start()
                        continue
                    time.sleep(min(0.1, max(0.0, t_next - time.time())))  # the schedule's tick
                s = take_sample(time.time() - t0, hosts, redis, ferret)
                if pruner:
                    s["ferretdb"]["pruned"] = pruner.stats()
                samples.append(s)
                out.write(json.dumps(s) + "\n")
                out.flush()
                # the next tick still ahead (a slow sample skips ticks rather than shifting the schedule)
                k = max(k + 1, math.ceil((time.time() - t0) / interval - 1e-9))
                line = " | ".join(
                    f"r{r['replica']} rss {r.get('rss_bytes', 0) / MiB:6.1f} MiB heap "
                    f"{r['gauges'].get('heap_in_use_bytes', 0) / MiB:5.1f} conns "
                    f"{r['gauges'].get('connections', 0):4.0f} fds {r.get('fds', 0):4d}" for r in s["replicas"])
                red = s["redis"]
                print(f"t={s['t']:6.1f}s  {line} | redis {red.get('used_memory', 0) / MiB:5.1f} MiB "
                      f"xlen {red.get('stream_len', '-')}", flush=True)
                dead = [r["replica"] for r in s["replicas"] if not r["alive"]]
                if dead:
                    failures.append(f"replica(s) {dead} exited during the run")
                    break
                if gen.poll() is not None and gen.returncode != 0:
                    failures.append(f"the generator exited {gen.returncode} during the run")
                    break
            try:
                gen.wait(max(1.0, t0 + duration + GENERATOR_SLACK_S - time.time()))
            except subprocess.TimeoutExpired:
                failures.append("the generator overran: killed")
                gen.kill()
                gen.wait()
            if Path(spec["out"]).exists():
                gen_out = json.loads(Path(spec["out"]).read_text())
            elif not failures:
                failures.append(f"the generator exited {gen.returncode} without a result")
            if watch_thread is not None:
                watch_thread.join(args.recover_timeout + 5)
            drained = drain_check(hosts, redis, ferret, t0, out, DRAIN_TIMEOUT_S)
            if drained is not None:
                failures.append(drained)
        finally:
            if gen.poll() is None:
                gen.kill()
                gen.wait()
            if pruner:
                pruner.stop_event.set()
                pruner.join(70)
        summary = analyze(header, samples, gen_out, restart_log, failures, t0)
        out.write(json.dumps(summary) + "\n")
    print(f"soak: samples in {out_path}")
    plot(header, samples, restart_log.get("killed_at", 0) - t0 if restart_log else None, args.plot)
    return 1 if summary["failures"] else 0


# =============================================================================
# Analysis and plot
# =============================================================================

def series_of(samples: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """name -> [(t, value)] of every judged series."""
    out: dict[str, list] = defaultdict(list)
    for s in samples:
        t = s["t"]
        for r in s["replicas"]:
            p = f"r{r['replica']}."
            for k in ("rss_bytes", "fds", "threads"):
                if r.get(k) is not None:
                    out[p + k].append((t, float(r[k])))
            for k, v in r.get("gauges", {}).items():
                if k in TOLERANCES:
                    out[p + k].append((t, float(v)))
        for k in ("used_memory", "keys", "stream_len", "dead_len"):
            v = s.get("redis", {}).get(k)
            if v is not None:
                out["redis." + k].append((t, float(v)))
    return out


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares: (slope per s, its standard error, mean level)."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((t - mt) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0, 0.0, my
    b = sum((t - mt) * (y - my) for t, y in points) / sxx
    a = my - b * mt
    ssr = sum((y - a - b * t) ** 2 for t, y in points)
    se = math.sqrt(ssr / (n - 2) / sxx) if n > 2 else float("inf")
    return b, se, my


def human(v: float, name: str) -> str:
    if name.endswith(("bytes", "memory")):
        return f"{v / MiB:.2f} MiB"
    return f"{v:.1f}"


def judge_series(samples: list[dict], half: float, failures: list[str], judged: bool = True) -> list[dict]:
    """One row per judged series: the fit over t >= half and its verdict;
    appends a line to failures for each series that grows (when judged:
    runs shorter than MIN_JUDGED_S print the table only)."""
    rows = []
    for name, pts in sorted(series_of(samples).items()):
        tail = [(t, y) for t, y in pts if t >= half - 1e-6]
        key = name.split(".", 1)[1] if name[0] == "r" and name[1].isdigit() else name
        rel, floor = TOLERANCES[key]
        if len(tail) < 3:
            rows.append({"series": name, "n": len(tail), "verdict": "too few samples"})
            if judged:
                failures.append(f"{name}: only {len(tail)} samples in the last half")
            continue
        b, se, level = fit(tail)
        growth_h = b * 3600
        lower_h = (b - t95(len(tail) - 2) * se) * 3600
        tol_h = max(rel * abs(level), floor)
        ok = lower_h <= tol_h
        rows.append({"series": name, "n": len(tail), "level": level, "slope_per_s": b, "se_per_s": se,
                     "growth_per_h": growth_h, "growth_lower95_per_h": lower_h, "tolerance_per_h": tol_h,
                     "max": max(y for _, y in tail),
                     "verdict": ("ok" if ok else "GROWS") if judged else ("(ok)" if ok else "(grows)")})
        if not ok and judged:
            failures.append(f"{name} grows: {human(growth_h, name)}/h (95 % lower bound "
                            f"{human(lower_h, name)}/h) > tolerance {human(tol_h, name)}/h at level "
                            f"{human(level, name)}")
    return rows


def analyze(header: dict, samples: list[dict], gen_out: dict | None, restart_log: dict,
            failures: list[str], t0: float) -> dict:
    p = header["params"]
    duration = p["duration"]
    half = duration / 2
    rows = judge_series(samples, half, failures, judged=duration >= MIN_JUDGED_S)
    cap = p["stream_maxlen"] + 250
    worst = max((s["redis"].get("stream_len", 0) for s in samples), default=0)
    if worst > cap:
        failures.append(f"the stream reached {worst} entries, over its cap {cap} (stream_maxlen + 250)")
    # The Redis restart and the recovery.
    rec: dict = {}
    if restart_log:
        rec = {"killed_at_s": round(restart_log["killed_at"] - t0, 1),
               "back_at_s": round(restart_log.get("back_at", 0) - t0, 1),
               "ready_after_s": restart_log.get("ready_after_s", {}), "errors": restart_log.get("errors", [])}
        if not restart_log.get("new_pid"):
            failures.append(f"redis did not restart: {restart_log.get('errors')}")
        for i in range(REPLICAS):
            if str(i) not in rec["ready_after_s"]:
                failures.append(f"replica {i} not ready with chat and ingest on Redis within "
                                f"{p['recover_timeout']:.0f} s of the restart")
    else:
        failures.append("the Redis restart did not happen")
    clients: dict = {}
    if gen_out is not None:
        c = gen_out["counters"]
        clients = {k: gen_out[k] for k in ("counters", "slow", "latency_ms", "cpu_s")}
        if restart_log.get("back_at"):
            back = restart_log["back_at"] - t0
            for i in range(REPLICAS):
                firsts = [int(b) for b, cnt in gen_out["buckets"].items()
                          if int(b) >= back and cnt.get(f"deliveries:r{i}", 0) > 0]
                after = min(firsts) - back if firsts else None
                rec.setdefault("first_delivery_after_s", {})[str(i)] = after
                if after is None or after > p["recover_timeout"]:
                    failures.append(f"replica {i}: no live delivery within {p['recover_timeout']:.0f} s "
                                    f"of the Redis restart")
        for j, sc in enumerate(gen_out["slow"]):
            if sc.get("closed_after_s") is None:
                failures.append(f"slow consumer {j} (replica {sc['replica']}) not closed: {sc.get('how')}")
        if not gen_out["slow"]:
            failures.append("no slow consumer ran")
        if c.get("acked", 0) == 0:
            failures.append("no message was acknowledged")
        # later buckets: messages still flowing at the end
        late = sum(v.get("acked", 0) for b, v in gen_out["buckets"].items() if int(b) >= duration * 0.9)
        if late == 0:
            failures.append("no message acknowledged in the last 10 % of the run")
    # slow consumer closes seen by the hosts
    if samples:
        last = samples[-1]["replicas"]
        closes = [r["counters"].get("closes_total{reason=slow_consumer}") or 0 for r in last]
        clients["host_slow_consumer_closes"] = closes
        if gen_out is not None:
            for i in range(REPLICAS):
                want = sum(1 for sc in gen_out["slow"] if sc["replica"] == i)
                if closes[i] < want:
                    failures.append(f"replica {i} counted {closes[i]} slow-consumer closes "
                                    f"(aurora_closes_total{{reason=\"slow_consumer\"}}), want {want}")
    print_report(rows, rec, clients, failures)
    return {"kind": "summary", "slopes": rows, "recovery": rec, "clients": clients, "failures": failures,
            "verdict": "FAIL" if failures else "PASS"}


def print_report(rows: list[dict], rec: dict, clients: dict, failures: list[str]) -> None:
    judged = not any(r["verdict"].startswith("(") for r in rows)
    print("\nslopes over the last half (least squares; growth extrapolated to 1 h)"
          + ("" if judged else f": NOT JUDGED, the run is shorter than {MIN_JUDGED_S:.0f} s") + ":")
    print(f"{'series':<32} {'n':>3} {'level':>12} {'growth/h':>12} {'95% low/h':>12} {'tol/h':>12}  verdict")
    for r in rows:
        if "level" not in r:
            print(f"{r['series']:<32} {r['n']:>3}  {r['verdict']}")
            continue
        n = r["series"]
        print(f"{n:<32} {r['n']:>3} {human(r['level'], n):>12} {human(r['growth_per_h'], n):>12} "
              f"{human(r['growth_lower95_per_h'], n):>12} {human(r['tolerance_per_h'], n):>12}  {r['verdict']}")
    if rec:
        print(f"\nredis restart: killed at {rec.get('killed_at_s')} s, back at {rec.get('back_at_s')} s; "
              f"replicas ready (chat+ingest on Redis) after {rec.get('ready_after_s')} s; first live "
              f"delivery after {rec.get('first_delivery_after_s')} s")
    if clients.get("counters"):
        c = clients["counters"]
        keys = sorted(c)
        print("\nclients: " + ", ".join(f"{k} {c[k]}" for k in keys))
        lm = dict(clients["latency_ms"])
        outage = lm.pop("outage", None)
        print(f"live latency, send -> another client's receipt, ms, of messages sent once: {lm} (every message "
              f"sent from 2 s before the Redis kill to 10 s after it was back: {outage}); generator CPU "
              f"{clients['cpu_s']} s")
        for j, sc in enumerate(clients["slow"]):
            print(f"slow consumer {j}: replica {sc['replica']} at {sc['started_s']} s, closed after "
                  f"{sc.get('closed_after_s')} s ({sc.get('how')}), close code {sc.get('close_code')}, "
                  f"{sc.get('requests')} requests")
        print(f"hosts' slow_consumer closes: {clients.get('host_slow_consumer_closes')}")
    print("\nverdict: " + ("PASS" if not failures else "FAIL\n  " + "\n  ".join(failures)))


def plot(header: dict, samples: list[dict], restart_s: float | None, path: Path | None) -> None:
    if not path or not samples:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    p = header["params"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    colors = ["tab:blue", "tab:orange"]
    for i in range(REPLICAS):
        ts = [s["t"] / 60 for s in samples]
        reps = [s["replicas"][i] for s in samples]
        axes[0].plot(ts, [r.get("rss_bytes", float("nan")) / MiB for r in reps], color=colors[i],
                     label=f"replica {i} RSS")
        axes[1].plot(ts, [r["gauges"].get("heap_in_use_bytes", float("nan")) / MiB for r in reps],
                     color=colors[i], label=f"replica {i} heap in use")
        axes[1].plot(ts, [r["gauges"].get("heap_free_bytes", float("nan")) / MiB for r in reps],
                     color=colors[i], linestyle="--", label=f"replica {i} heap free (held by malloc)")
        axes[2].plot(ts, [r.get("fds", float("nan")) for r in reps], color=colors[i],
                     label=f"replica {i} open descriptors")
        axes[2].plot(ts, [r["gauges"].get("connections", float("nan")) for r in reps], color=colors[i],
                     linestyle=":", label=f"replica {i} connections")
    axes[0].set_ylabel("MiB")
    axes[1].set_ylabel("MiB")
    axes[2].set_ylabel("count")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        ax.axvspan(p["duration"] / 2 / 60, p["duration"] / 60, color="0.92", zorder=0)
        if restart_s is not None:
            ax.axvline(restart_s / 60, color="tab:red", linestyle="-.", linewidth=1)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_title(f"soak, {p['duration'] / 60:.0f} min, 2 replicas (all-in-one), {header['git_revision']}: "
                      f"grey = the fitted last half, red = Redis restart", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"soak: plot -> {path}")


def analyze_file(path: Path, plot_path: Path | None) -> int:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    header = next(x for x in lines if x.get("kind") == "run")
    samples = [x for x in lines if x.get("kind") == "sample"]
    summary = next((x for x in lines if x.get("kind") == "summary"), {})
    failures: list[str] = []
    d = header["params"]["duration"]
    rows = judge_series(samples, d / 2, failures, judged=d >= MIN_JUDGED_S)
    print_report(rows, summary.get("recovery", {}), summary.get("clients", {}),
                 failures + [f for f in summary.get("failures", []) if " grows" not in f])
    rs = summary.get("recovery", {}).get("killed_at_s")
    plot(header, samples, rs, plot_path)
    return 1 if failures or summary.get("failures") else 0


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signal.SIGTERM)  # unwinds through the finally blocks that stop the services


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--generator":
        generator_child(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--duration", type=float, default=600, help="seconds of traffic (default %(default)s)")
    ap.add_argument("--interval", type=float, default=0,
                    help="seconds between samples (default 10; duration/30 under 5 minutes)")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="PNG to draw (default %(default)s)")
    ap.add_argument("--rate", type=float, default=30, help="residents' messages/s in all (default %(default)s)")
    ap.add_argument("--rooms", type=int, default=100)
    ap.add_argument("--residents", type=int, default=40)
    ap.add_argument("--churners", type=int, default=6, help="concurrent connect/disconnect loops")
    ap.add_argument("--churn-users", type=int, default=17)
    ap.add_argument("--restart-at", type=float, default=0.25, help="Redis restart, fraction of the run")
    ap.add_argument("--redis-outage", type=float, default=2.0, help="seconds Redis stays down")
    ap.add_argument("--recover-timeout", type=float, default=30.0)
    ap.add_argument("--slow-timeout", type=float, default=60.0,
                    help="a slow consumer must be closed within this many seconds")
    ap.add_argument("--history-keep", type=float, default=60.0,
                    help="delete stored messages older than this many seconds every 15 s (0: keep all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", type=Path, help="build folder (default $AURORA_BUILD_DIR or build/)")
    ap.add_argument("--analyze", type=Path, help="re-judge and re-plot a samples file instead of running")
    args = ap.parse_args()
    if args.analyze:
        return analyze_file(args.analyze, args.plot)
    if args.duration < 30:
        ap.error("--duration must be at least 30 s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
