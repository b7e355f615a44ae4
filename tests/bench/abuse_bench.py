"""Abuse benchmark (not a test): what one hostile client costs everyone else.

A bystander pair of clients in one room exchanges messages at a steady rate
(--rate, default 20 msg/s in all, half from each) through the all-in-one
profile (auth + ratelimit + chat + ingest in one aurora-host, a real
redis-server and FerretDB on free loopback ports, as run_bench.py starts
them). Each scenario gets fresh servers and a fresh host, a stream
pre-filled with --fill entries (pipelined XADDs to chat:messages with the
chat plugin's fields roomId, userId, text, username, all in the room
"abuse-fill", ingested into FerretDB before the clock starts), then:

  quiet baseline (--baseline s): the bystanders alone;
  flood (--duration s): --flooders hostile clients do the scenario's thing.

Scenarios (--scenarios, comma-separated, default all):

  none            the flood phase without flooders (the baseline's baseline)
  resume          {"type":"resume","room":<bystanders' room>,"since":"0-0"}
                  over and over: each one makes chat read the stream from the
                  start, up to resume_scan_max (20,000) entries, finding only
                  the few bystander messages (--resume-room fill asks for the
                  filled room instead: up to resume_max messages sent back)
  history         {"type":"history","room":"abuse-fill"} over WebSocket and,
                  beside it, GET /api/rooms/abuse-fill/messages (Bearer)
                  from each flooder
  joinleave       join/leave pairs in the bystanders' room (each join is a
                  presence event for the bystanders: counted)
  register        POST /api/auth/register (distinct usernames), --inflight
                  concurrent requests per flooder, each flooder from its own
                  client address; meanwhile a prober logs in (an existing
                  user, one login every --login-interval s) and its latency
                  is reported, in the quiet phase too
  register-spread the same, every registration from a new client address
                  (an attacker with many addresses: per-address throttles
                  do not apply)

A flooder is closed-loop: it keeps --inflight requests outstanding on its
connection, honours retry_after_ms of a rate_limited answer (pauses), and
reconnects when closed (after 0.2 s; 1 s after a refused upgrade): the most
work a client can get out of the server without the server's consent.
Flooders run in their own process at nice --flooder-nice (default 10), with
their own client addresses (127.0.1.<i>; bystanders 127.0.0.1, the login
prober 127.0.0.2), so per-address limits of one do not hit another.

Reported per scenario: the bystanders' latency (send -> the other
bystander's receipt) p50/p99/max and lost messages (not received within
--grace s of the last send) in the flood phase and in the quiet phase;
presence events of the bystanders' room the bystanders received; login
p50/p99 (register scenarios); what the flooders got (answers/s, rate
limited, closes); CPU of the host, Redis and FerretDB (% of one core).

Host config: samples/config/all-in-one.json's plugins with their defaults
(bcrypt cost 10, ratelimit's control and connection limits, the host's
frame budgets where the build has them), except ratelimit room_max and
user_max at 100, so the bystanders' 10 msg/s each is not refused.

    .cache/venv/bin/python tests/bench/abuse_bench.py [--build DIR] \\
        [--scenarios none,resume,history,joinleave,register,register-spread] \\
        [--duration 10] [--baseline 5] [--flooders 3] [--json]

Prints the command line first and one line of numbers per scenario; --json
appends one JSON object per scenario to .cache/bench/abuse.jsonl (--results
to choose another file). Everything it starts is stopped by PID."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))

from run_bench import (BENCH_SECRET, append_result, git_revision, kill_leftover_children,  # noqa: E402
                       machine, raise_open_files)

SCENARIOS = ("none", "resume", "history", "joinleave", "register", "register-spread")
DEFAULT_RESULTS = REPO_ROOT / ".cache" / "bench" / "abuse.jsonl"
STREAM = "chat:messages"
GROUP = "mongo_workers"
FILL_ROOM = "abuse-fill"
ROOM = "abuse-room"
PROBER = ("abuse_prober", "prober-password-1")
BYSTANDER_ADDR = "127.0.0.1"
PROBER_ADDR = "127.0.0.2"
READY_DEADLINE_S = 30.0  # children connect (and say so) before the clock starts, within this
START_MARGIN_S = 0.2  # from the children's "ready" to the first phase: the schedule reaching them
CHILD_SLACK_S = 30.0  # a child not done this long after its last phase is killed


# ---- shared helpers ------------------------------------------------------------

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(secret: str, n: int, username: str, ttl_s: int = 3600) -> str:
    """An HS256 token as the auth plugin issues them (userId: a 24-hex ObjectId)."""
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"userId": f"{n:024x}", "username": username, "iat": now,
                              "exp": now + ttl_s}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def pct(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile of xs (any order); None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def lat_summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": pct(ms, 0.50), "p99_ms": pct(ms, 0.99), "max_ms": max(ms) if ms else None}


async def ready_then_schedule(spec: dict) -> None:
    """Tells the parent this child is set up ("ready" on stdout), then waits
    for the schedule it answers with on stdin (absolute monotonic times,
    shared by every process of the machine) and puts it into spec."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit("abuse_bench child: the parent closed stdin before sending the schedule")
    spec.update(json.loads(line))


async def sleep_until(t: float) -> None:
    """Pacing on an absolute schedule (the bystanders' 20 msg/s, the phase
    boundaries): a timetable, not a wait for anything to be ready."""
    d = t - time.monotonic()
    if d > 0:
        await asyncio.sleep(d)


async def http_request(port: int, method: str, path: str, *, body: bytes | None = None,
                       headers: dict | None = None, local_addr: str | None = None,
                       conn: list | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request to 127.0.0.1:port. With conn (a list holding a
    (reader, writer) pair or nothing) the connection is kept and reused;
    otherwise it is closed after the answer. Raises OSError/TimeoutError."""
    rw = conn[0] if conn else None
    if rw is None:
        rw = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, local_addr=(local_addr, 0) if local_addr else None), timeout)
    reader, writer = rw
    keep = conn is not None
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Connection: {'keep-alive' if keep else 'close'}"]
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        async with asyncio.timeout(timeout):
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if "content-length" in hdrs:
                data = await reader.readexactly(int(hdrs["content-length"]))
            elif method == "HEAD" or status in (204, 304):
                data = b""
            else:
                data = await reader.read()
                keep = False
        if hdrs.get("connection", "").lower() == "close":
            keep = False
    except BaseException:
        keep = False
        raise
    finally:
        if keep and conn is not None:
            conn[:] = [rw]
        else:
            if conn is not None:
                conn.clear()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return status, data


async def ws_connect(port: int, token: str, local_addr: str):
    from websockets.asyncio.client import connect
    return await connect(f"ws://127.0.0.1:{port}/", subprotocols=[f"Bearer.{token}"], ping_interval=None,
                         max_size=None, compression=None, open_timeout=10, close_timeout=2,
                         local_addr=(local_addr, 0))


# ---- the bystanders (and the login prober) ---------------------------------------

async def bystander_main(spec: dict) -> dict:
    port, secret, rate = spec["port"], spec["secret"], spec["rate"]
    sent: dict[tuple[int, int], tuple[int, str]] = {}  # (sender, seq) -> (send ns, phase)
    lat: dict[str, list[float]] = {"quiet": [], "flood": []}
    got: set[tuple[int, int]] = set()
    sending_done = [False]   # the bystanders' schedule is over: all_in may be set
    all_in = asyncio.Event()  # every message sent has arrived somewhere
    presence: Counter = Counter()
    other: Counter = Counter()
    closes: list = []
    closing = [False]

    def phase_of(t: float) -> str | None:
        t_start, t_flood, t_end = spec["t_start"], spec["t_flood"], spec["t_end"]
        if t_start <= t < t_flood:
            return "quiet"
        if t_flood <= t < t_end + spec["grace"]:
            return "flood"
        return None

    clients = []
    for i in range(2):
        ws = await ws_connect(port, mint(secret, 0xB0 + i, f"bystander{i}"), BYSTANDER_ADDR)
        await ws.send(json.dumps({"type": "join", "room": ROOM}))
        async with asyncio.timeout(10):
            while True:
                o = json.loads(await ws.recv())
                if o.get("type") == "joined" and o.get("room") == ROOM:
                    break
        clients.append(ws)
    await ready_then_schedule(spec)  # connected and joined: the clock may start
    t_start, t_flood, t_end = spec["t_start"], spec["t_flood"], spec["t_end"]

    async def reader(me: int, ws) -> None:
        try:
            async for raw in ws:
                now_ns = time.monotonic_ns()
                o = json.loads(raw)
                typ = o.get("type")
                if typ == "message":
                    text = o.get("text", "")
                    if text.startswith("abuse|"):
                        _, sender, seq, t_ns = text.split("|")[:4]
                        key = (int(sender), int(seq))
                        if key[0] != me and key in sent and key not in got:
                            got.add(key)
                            lat[sent[key][1]].append((now_ns - int(t_ns)) / 1e6)
                            if sending_done[0] and len(got) >= len(sent):
                                all_in.set()
                elif typ == "presence" and "event" in o and o.get("room") == ROOM and not closing[0]:
                    ph = phase_of(now_ns / 1e9)
                    if ph:
                        presence[f"{ph}_{o['event']}"] += 1
                elif typ in ("rate_limited", "error"):
                    other[f"{typ}:{o.get('code') or o.get('limit')}"] += 1
        except Exception as e:  # noqa: BLE001 - a closed bystander is a result, not a crash
            closes.append(f"bystander{me}: {type(e).__name__}: {e}")
        else:
            closes.append(f"bystander{me}: closed {ws.close_code}")

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients)]

    logins: list[tuple[float, float, int]] = []  # (start, seconds, status)

    async def prober() -> None:
        body = json.dumps({"username": PROBER[0], "password": PROBER[1]}).encode()
        await sleep_until(t_start)
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                status, _ = await http_request(port, "POST", "/api/auth/login", body=body,
                                               local_addr=PROBER_ADDR, timeout=60)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                status = 0
            logins.append((t0, time.monotonic() - t0, status))
            await sleep_until(t0 + spec["login_interval"])

    probe_task = asyncio.create_task(prober()) if spec["login"] else None

    # The pair's messages, on an absolute schedule, alternating senders.
    period = 1.0 / rate
    k = 0
    late_max = 0.0
    while True:
        due = t_start + k * period
        if due >= t_end:
            break
        await sleep_until(due)
        late_max = max(late_max, time.monotonic() - due)
        me = k % 2
        t_ns = time.monotonic_ns()
        sent[(me, k)] = (t_ns, "quiet" if due < t_flood else "flood")
        with contextlib.suppress(Exception):  # a closed connection shows as lost messages
            await clients[me].send(json.dumps({"type": "message", "room": ROOM,
                                               "text": f"abuse|{me}|{k}|{t_ns}|bystander traffic"}))
        k += 1
    # Every message sent has arrived (the readers set all_in), or the grace is over.
    sending_done[0] = True
    if len(got) >= len(sent):
        all_in.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), timeout=spec["grace"])
    if probe_task:
        await probe_task
    closing[0] = True  # our own leave events are not the flood's
    for ws in clients:
        with contextlib.suppress(Exception):
            await ws.close()
    for r in readers:
        r.cancel()
    out = {"late_max_ms": late_max * 1000, "closes": [c for c in closes if "closed 1000" not in c],
           "bystander_errors": dict(other)}
    for ph in ("quiet", "flood"):
        n_sent = sum(1 for v in sent.values() if v[1] == ph)
        n_lost = sum(1 for key, v in sent.items() if v[1] == ph and key not in got)
        out[ph] = lat_summary(lat[ph]) | {"sent": n_sent, "lost": n_lost,
                                          "presence_join": presence[f"{ph}_join"],
                                          "presence_leave": presence[f"{ph}_leave"]}
        if spec["login"]:
            in_ph = [(d * 1000, s) for t0, d, s in logins if (t_start <= t0 < t_flood) == (ph == "quiet")]
            ok = [d for d, s in in_ph if s == 200]
            out[ph]["login"] = lat_summary(ok) | {"statuses": dict(Counter(str(s) for _, s in in_ph))}
    return out


# ---- the flooders -----------------------------------------------------------------

ANSWERS = {"resume": {"resumed"}, "history": {"history"}, "joinleave": {"joined", "left"}}


async def ws_flooder(i: int, spec: dict, stats: Counter, lat: list) -> None:
    scenario, port, k_max = spec["scenario"], spec["port"], spec["inflight"]
    t_flood, t_end = spec["t_flood"], spec["t_end"]
    addr = f"127.0.1.{i + 1}"
    token = mint(spec["secret"], 0xF000 + i, f"flooder{i}")
    resume_room = FILL_ROOM if spec["resume_room"] == "fill" else ROOM
    seq = 0
    while time.monotonic() < t_end:
        try:
            ws = await ws_connect(port, token, addr)
        except Exception as e:  # noqa: BLE001 - refused upgrades, timeouts: count and retry
            stats[f"connect_failed:{type(e).__name__}"] += 1
            await asyncio.sleep(1.0)  # the load itself: a refused client comes back once a second
            continue
        stats["connects"] += 1
        await sleep_until(t_flood)
        state = {"outstanding": 0, "pause_until": 0.0, "closed": False}
        sent_at: dict = {}
        wake = asyncio.Event()

        async def reader(ws=ws, state=state, wake=wake, sent_at=sent_at) -> None:
            answers = ANSWERS[scenario]
            try:
                async for raw in ws:
                    o = json.loads(raw)
                    typ = o.get("type")
                    if time.monotonic() >= t_end:
                        continue
                    if typ in answers or typ in ("rate_limited", "error"):
                        state["outstanding"] = max(0, state["outstanding"] - 1)
                        t_sent = sent_at.pop(o.get("ref"), None)
                        if t_sent is not None:
                            lat.append((time.monotonic() - t_sent) * 1000)
                        if typ == "rate_limited":
                            stats[f"rate_limited:{o.get('limit')}"] += 1
                            state["pause_until"] = time.monotonic() + o.get("retry_after_ms", 100) / 1000
                        elif typ == "error":
                            stats[f"error:{o.get('code')}"] += 1
                        else:
                            stats["answered"] += 1
                        wake.set()
                    elif typ == "message":
                        stats["messages_received"] += 1
            except Exception:  # noqa: BLE001 - the writer sees the close
                pass
            state["closed"] = True
            wake.set()

        rt = asyncio.create_task(reader())
        joined = False
        try:
            while not state["closed"]:
                now = time.monotonic()
                if now >= t_end:
                    break
                if now < state["pause_until"]:
                    await asyncio.sleep(min(state["pause_until"], t_end) - now)  # the server's retry_after, honoured
                    continue
                if state["outstanding"] >= k_max:  # the host answers every request, however late
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=min(1.0, t_end - now))
                    continue
                seq += 1
                if scenario == "resume":
                    req = {"type": "resume", "room": resume_room, "since": "0-0", "ref": seq}
                elif scenario == "history":
                    req = {"type": "history", "room": FILL_ROOM, "ref": seq}
                else:
                    req = {"type": "leave" if joined else "join", "room": ROOM, "ref": seq}
                    joined = not joined
                sent_at[seq] = time.monotonic()
                await ws.send(json.dumps(req))
                state["outstanding"] += 1
                stats["sent"] += 1
        except Exception:  # noqa: BLE001 - closed under us
            pass
        if time.monotonic() >= t_end:
            stats["unanswered_at_end"] += state["outstanding"]
        if ws.close_code is not None and time.monotonic() < t_end:
            stats[f"closed:{ws.close_code}"] += 1
        rt.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
        if time.monotonic() < t_end:
            await asyncio.sleep(0.2)  # the load itself: a closed flooder reconnects after 0.2 s


async def http_history_flooder(i: int, spec: dict, stats: Counter, lat: list) -> None:
    token = mint(spec["secret"], 0xF000 + i, f"flooder{i}")
    conn: list = []
    await sleep_until(spec["t_flood"])
    while time.monotonic() < spec["t_end"]:
        t0 = time.monotonic()
        try:
            status, _ = await http_request(spec["port"], "GET", f"/api/rooms/{FILL_ROOM}/messages",
                                           headers={"Authorization": f"Bearer {token}"},
                                           local_addr=f"127.0.1.{i + 1}", conn=conn,
                                           timeout=max(0.5, spec["t_end"] - time.monotonic()))
            if time.monotonic() < spec["t_end"]:
                stats[f"http_history:{status}"] += 1
                lat.append((time.monotonic() - t0) * 1000)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            if time.monotonic() < spec["t_end"]:
                stats[f"http_history:{type(e).__name__}"] += 1
                await asyncio.sleep(0.1)  # the load itself: a failed request is sent again after 0.1 s
            else:
                stats["http_history:unanswered_at_end"] += 1


async def register_flooder(i: int, j: int, spec: dict, stats: Counter, lat: list, counter: list) -> None:
    await sleep_until(spec["t_flood"])
    run = uuid.uuid4().hex[:6]
    k = 0
    while time.monotonic() < spec["t_end"]:
        k += 1
        if spec["scenario"] == "register-spread":
            counter[0] += 1
            n = counter[0]
            addr = f"127.{64 + (n >> 16) % 64}.{(n >> 8) & 255}.{(n & 255) or 1}"
        else:
            addr = f"127.0.1.{i + 1}"
        body = json.dumps({"username": f"fl{run}_{i}_{j}_{k}", "password": "flood-password-1"}).encode()
        t0 = time.monotonic()
        try:
            status, _ = await http_request(spec["port"], "POST", "/api/auth/register", body=body,
                                           local_addr=addr, timeout=max(1.0, spec["t_end"] - time.monotonic()))
            if time.monotonic() < spec["t_end"]:
                stats[f"register:{status}"] += 1
                lat.append((time.monotonic() - t0) * 1000)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            if time.monotonic() < spec["t_end"]:
                stats[f"register:{type(e).__name__}"] += 1
                await asyncio.sleep(0.1)  # the load itself: a failed request is sent again after 0.1 s
            else:
                stats["register:unanswered_at_end"] += 1


async def flooder_main(spec: dict) -> dict:
    await ready_then_schedule(spec)  # the flooders connect when their phase starts
    stats: Counter = Counter()
    ws_lat: list[float] = []  # ms from a WebSocket request to its answer (rate_limited and errors included)
    http_lat: list[float] = []  # ms of each answered HTTP request
    tasks = []
    counter = [0]
    for i in range(spec["flooders"]):
        if spec["scenario"] in ANSWERS:
            tasks.append(ws_flooder(i, spec, stats, ws_lat))
        if spec["scenario"] == "history":
            tasks.append(http_history_flooder(i, spec, stats, http_lat))
        if spec["scenario"].startswith("register"):
            tasks += [register_flooder(i, j, spec, stats, http_lat, counter) for j in range(spec["inflight"])]
    cpu0 = time.process_time()
    try:
        async with asyncio.timeout(spec["t_end"] - time.monotonic() + 5):
            await asyncio.gather(*tasks)
    except TimeoutError:
        stats["flooder_overran"] += 1
    return {"stats": dict(stats), "flooder_cpu_s": time.process_time() - cpu0,
            "ws_answer": lat_summary(ws_lat), "http_answer": lat_summary(http_lat)}


def child_main(role: str, spec: dict) -> None:
    fn = bystander_main if role == "bystander" else flooder_main
    out = asyncio.run(fn(spec))
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


# ---- the services -----------------------------------------------------------------

def host_config(build: Path, redis_url: str, mongo_url: str) -> dict:
    p = build / "plugins"
    return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url}, "mongo": {"url": mongo_url},
            "jwt": {"secret": BENCH_SECRET},
            "plugins": [{"name": "auth", "path": str(p / "auth.so"), "config": {}},
                        {"name": "ratelimit", "path": str(p / "ratelimit.so"),
                         "config": {"room_max": 100, "user_max": 100}},
                        {"name": "chat", "path": str(p / "chat.so"), "config": {}},
                        {"name": "ingest", "path": str(p / "ingest.so"), "config": {"workers": 1}}]}


def prefill(redis_url: str, n: int) -> None:
    import redis as redis_py
    r = redis_py.Redis.from_url(redis_url)
    for start in range(0, n, 1000):
        p = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            p.xadd(STREAM, {"roomId": FILL_ROOM, "userId": f"{i % 100 + 1:024x}", "username": f"filler{i % 100}",
                            "text": f"filler message {i}: some words of ordinary length to look like chat"})
        p.execute()
    r.close()


def wait_ingested(redis_url: str, deadline_s: float = 120.0) -> float:
    """Until the ingest group has stored and acknowledged everything; returns the seconds waited."""
    import redis as redis_py
    r = redis_py.Redis.from_url(redis_url, decode_responses=True)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < deadline_s:
            with contextlib.suppress(redis_py.ResponseError):
                for g in r.xinfo_groups(STREAM):
                    if g["name"] == GROUP and g["lag"] == 0 and g["pending"] == 0:
                        return time.monotonic() - t0
            time.sleep(0.1)  # polling the group, bounded
    finally:
        r.close()
    raise SystemExit(f"abuse_bench: the prefilled stream was not ingested within {deadline_s:.0f} s")


def ingest_backlog_of(redis_url: str) -> int | None:
    """Stream entries the ingest group has not stored yet (lag + pending)."""
    import redis as redis_py
    r = redis_py.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
    try:
        for g in r.xinfo_groups(STREAM):
            if g["name"] == GROUP:
                return (g["lag"] or 0) + g["pending"]
    except (redis_py.RedisError, OSError):
        return None
    finally:
        r.close()
    return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs from /proc/stat: how busy the whole machine was, others included."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)  # idle + iowait
    return sum(f[:8]) - idle, sum(f[:8])


def cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    f = stat[stat.rfind(")") + 2:].split()
    return int(f[11]) + int(f[12])  # utime + stime


@contextlib.contextmanager
def services(build: Path):
    from aurora_host import AuroraHost
    from real_servers import FerretDbServer, RedisServer
    redis = ferret = host = None
    workdir = Path(tempfile.mkdtemp(prefix="aurora-abuse-"))
    try:
        redis = RedisServer.start()
        ferret = FerretDbServer.start()
        host = AuroraHost.start(build / "host" / "aurora-host", workdir / "host",
                                host_config(build, redis.url, ferret.url()))
        deadline = time.monotonic() + 30
        while host.get("/ready").status != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"abuse_bench: host not ready within 30 s:\n{host.stderr_tail()}")
            time.sleep(0.05)  # readiness poll, bounded
        yield {"redis": redis, "ferret": ferret, "host": host,
               "pids": {"host": host.pid, "redis": redis.proc.proc.pid, "ferretdb": ferret.proc.proc.pid}}
    finally:
        if host is not None:
            code, killed = host.stop()
            if code != 0 or killed:
                print(f"abuse_bench: aurora-host exited {code}{' (killed)' if killed else ''}; stderr tail:\n"
                      f"{host.stderr_tail(15)}", file=sys.stderr)
        for s in (redis, ferret):
            if s is not None:
                s.stop()
        kill_leftover_children()
        shutil.rmtree(workdir, ignore_errors=True)


# ---- one scenario -------------------------------------------------------------------

def spawn(role: str, spec: dict, nice: int = 0) -> subprocess.Popen:
    def pre() -> None:
        if nice:
            os.nice(nice)
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", role, "--spec", json.dumps(spec)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=pre)


def wait_ready(procs: dict[str, subprocess.Popen], deadline_s: float = READY_DEADLINE_S) -> None:
    """Until every child has said "ready" (a readiness probe with a deadline)."""
    deadline = time.monotonic() + deadline_s
    for role, p in procs.items():
        assert p.stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or p.poll() is not None:
                raise SystemExit(f"abuse_bench: the {role} was not ready within {deadline_s:.0f} s")
            if select.select([p.stdout], [], [], left)[0]:
                line = p.stdout.readline()
                if line.strip() == "ready":
                    break
                if not line:
                    raise SystemExit(f"abuse_bench: the {role} exited before it was ready")


def collect(proc: subprocess.Popen, deadline: float, what: str) -> dict | None:
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        print(f"abuse_bench: the {what} (pid {proc.pid}) overran: killing it", file=sys.stderr)
        proc.kill()
        proc.communicate()
        return None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"abuse_bench: the {what} exited {proc.returncode} without a result", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def run_scenario(scenario: str, args, build: Path) -> dict:
    with services(build) as svc:
        port = svc["host"].port
        prefill(svc["redis"].url, args.fill)
        ingest_s = wait_ingested(svc["redis"].url)
        login = scenario.startswith("register")
        if login:
            status, body = asyncio.run(http_request(
                port, "POST", "/api/auth/register", local_addr=PROBER_ADDR,
                body=json.dumps({"username": PROBER[0], "password": PROBER[1]}).encode()))
            if status != 200:
                raise SystemExit(f"abuse_bench: registering the login prober: {status} {body[:200]!r}")
        spec = {"port": port, "secret": BENCH_SECRET, "rate": args.rate, "grace": args.grace, "login": login,
                "login_interval": args.login_interval, "scenario": scenario, "flooders": args.flooders,
                "inflight": args.inflight, "resume_room": args.resume_room}
        procs = {"bystander": spawn("bystander", spec)}
        if scenario != "none":
            procs["flooder"] = spawn("flooder", spec, nice=args.flooder_nice)
        try:
            # The clock starts once every child is connected and says so.
            wait_ready(procs)
            t_start = time.monotonic() + START_MARGIN_S
            t_flood = t_start + args.baseline
            t_end = t_flood + args.duration
            schedule = json.dumps({"t_start": t_start, "t_flood": t_flood, "t_end": t_end}) + "\n"
            for p in procs.values():
                assert p.stdin is not None
                p.stdin.write(schedule)
                p.stdin.flush()
            cpu = {}
            for mark, t in (("start", t_start), ("flood", t_flood), ("end", t_end)):
                time.sleep(max(0.0, t - time.monotonic()))  # the phase boundaries, bounded by the schedule
                cpu[mark] = ({k: cpu_ticks(p) for k, p in svc["pids"].items()} | {"machine": machine_ticks()},
                             time.monotonic())
            ingest_backlog = ingest_backlog_of(svc["redis"].url)
            deadline = t_end + args.grace + CHILD_SLACK_S
            results = {role: collect(p, deadline, role) for role, p in procs.items()}
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()
        if not svc["host"].running():
            raise SystemExit(f"abuse_bench: aurora-host died during {scenario}:\n{svc['host'].stderr_tail()}")
        hz = os.sysconf("SC_CLK_TCK")

        def cpu_pct(a: str, b: str) -> dict:
            """% of one core for our servers; machine: % of all cores busy (anyone's work)."""
            (ta, wa), (tb, wb) = cpu[a], cpu[b]
            out = {k: round(100.0 * (tb[k] - ta[k]) / hz / (wb - wa), 1) for k in ta if k != "machine"}
            (ba, na), (bb, nb) = ta["machine"], tb["machine"]
            out["machine"] = round(100.0 * (bb - ba) / max(1, nb - na), 1)
            return out

        by = results["bystander"]
        if by is None:
            raise SystemExit(f"abuse_bench: no bystander result for {scenario}")
        fl = results.get("flooder")
        return {"scenario": scenario, "bystander": by, "flooder": fl,
                "cpu_pct": {"quiet": cpu_pct("start", "flood"), "flood": cpu_pct("flood", "end")},
                "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
                "ingest_prefill_s": round(ingest_s, 2), "ingest_backlog_at_end": ingest_backlog,
                "host_pid": svc["host"].pid}


def fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def one_line(r: dict, duration: float) -> str:
    b = r["bystander"]
    f, q = b["flood"], b["quiet"]
    parts = [f"{r['scenario']:<15} bystander p50 {fmt(f['p50_ms'])} p99 {fmt(f['p99_ms'])} "
             f"max {fmt(f['max_ms'])} ms lost {f['lost']}/{f['sent']}"
             + (f" (refused {sum(b['bystander_errors'].values())})" if b["bystander_errors"] else ""),
             f"quiet p50 {fmt(q['p50_ms'])} p99 {fmt(q['p99_ms'])} max {fmt(q['max_ms'])} lost {q['lost']}",
             f"presence {f['presence_join'] + f['presence_leave']}"]
    if "login" in f:
        parts.append(f"login p50 {fmt(f['login']['p50_ms'], '.0f')} p99 {fmt(f['login']['p99_ms'], '.0f')} ms "
                     f"(quiet {fmt(q['login']['p50_ms'], '.0f')}/{fmt(q['login']['p99_ms'], '.0f')}) "
                     f"{f['login']['statuses']}")
    if r["flooder"]:
        st = r["flooder"]["stats"]
        answered = st.get("answered", 0) + sum(v for k, v in st.items()
                                               if k.startswith(("http_history:2", "register:2")))
        refused = sum(v for k, v in st.items() if k.startswith("rate_limited") or k.startswith(("register:4",
                                                                                                 "register:5",
                                                                                                 "http_history:4",
                                                                                                 "http_history:5")))
        closes = sum(v for k, v in st.items() if k.startswith("closed:"))
        ans = r["flooder"]["http_answer"] if r["scenario"].startswith("register") else r["flooder"]["ws_answer"]
        parts.append(f"flood {answered / duration:.1f} served/s, {refused / duration:.1f} refused/s, "
                     f"{closes} closes, answer p50 {fmt(ans['p50_ms'], '.0f')} ms")
    c = r["cpu_pct"]["flood"]
    parts.append(f"cpu% host {c['host']:.0f} redis {c['redis']:.0f} ferret {c['ferretdb']:.0f} "
                 f"(machine {c['machine']:.0f}% of all cores)")
    if r.get("ingest_backlog_at_end"):
        parts.append(f"ingest backlog {r['ingest_backlog_at_end']}")
    if b["closes"]:
        parts.append(f"BYSTANDER CLOSED: {b['closes']}")
    return " | ".join(parts)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signal.SIGTERM)  # unwinds through the finally blocks that stop the services


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--role", choices=["bystander", "flooder"], help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--build", type=Path, default=None,
                    help="build folder with host/aurora-host and plugins/*.so (default: $AURORA_BUILD_DIR or build/)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, from: " + ", ".join(SCENARIOS))
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of flood (default %(default)s)")
    ap.add_argument("--baseline", type=float, default=5.0, help="seconds of quiet before it (default %(default)s)")
    ap.add_argument("--flooders", type=int, default=3, help="hostile clients (default %(default)s)")
    ap.add_argument("--inflight", type=int, default=4,
                    help="requests each flooder keeps outstanding (default %(default)s)")
    ap.add_argument("--rate", type=float, default=20.0, help="bystander messages/s, both together (default %(default)s)")
    ap.add_argument("--fill", type=int, default=20000, help="stream entries prefilled (default %(default)s)")
    ap.add_argument("--resume-room", choices=["bystander", "fill"], default="bystander",
                    help="room the resume flood asks for (default %(default)s)")
    ap.add_argument("--grace", type=float, default=3.0, help="seconds to wait for the last messages (default %(default)s)")
    ap.add_argument("--login-interval", type=float, default=0.25,
                    help="seconds between the prober's login starts (default %(default)s)")
    ap.add_argument("--flooder-nice", type=int, default=10, help="nice of the flooder process (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="append one JSON object per scenario to --results")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="(default: %(default)s)")
    args = ap.parse_args()
    if args.role:
        child_main(args.role, json.loads(args.spec))
        return 0
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {bad}; choose from {', '.join(SCENARIOS)}")
    if args.build is not None:
        os.environ["AURORA_BUILD_DIR"] = str(args.build.resolve())
    from aurora_host import build_dir
    build = build_dir()
    for f in ("host/aurora-host", "plugins/auth.so", "plugins/ratelimit.so", "plugins/chat.so", "plugins/ingest.so"):
        if not (build / f).is_file():
            ap.error(f"{build / f} is missing: build it first")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise_open_files(65536)
    command = shlex.join([".cache/venv/bin/python", "tests/bench/abuse_bench.py", *sys.argv[1:]])
    rev = git_revision()
    print(f"command: {command}\nbuild: {build} (git {rev})", flush=True)
    rc = 0
    try:
        for s in scenarios:
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            try:
                r = run_scenario(s, args, build)
            except SystemExit as e:
                if isinstance(e.code, int):
                    raise
                print(f"{s:<15} FAILED: {e}", flush=True)
                rc = 1
                continue
            print(one_line(r, args.duration), flush=True)
            if args.json:
                append_result(args.results, {
                    "bench": "abuse", "time_utc": started, "git_revision": rev, "build": str(build),
                    "command": command, "machine": machine(),
                    "params": {k: getattr(args, k) for k in ("duration", "baseline", "flooders", "inflight", "rate",
                                                             "fill", "resume_room", "grace", "login_interval",
                                                             "flooder_nice")} | {"scenario": s},
                    "results": r})
        if args.json:
            print(f"results: appended to {args.results}")
    except KeyboardInterrupt:
        print("abuse_bench: interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
