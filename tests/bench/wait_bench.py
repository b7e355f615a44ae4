"""What chat's `wait_replicas` costs (docs/scaling.md): one aurora-host with
chat on a Redis master that has one replica, all on loopback; clients send
messages with refs, each in a room of its own and keeping --window unacknowledged, for
--duration seconds. The same run measures wait_replicas 0 and 1 alternately
(--rounds times each, a fresh aurora-host each time), so that the ratio is
taken under the same machine load. Printed per setting: acks per second, ack
latency (p50, p99), and CPU per message of aurora-host and of the Redis
master.

    .cache/venv/bin/python tests/bench/wait_bench.py [--clients 20] [--window 20] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "support"))

import redis as redis_py  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import RedisServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_calls(redis: RedisServer) -> int:
    """WAIT commands the master has run (INFO commandstats)."""
    with redis_py.Redis(host=redis.host, port=redis.port) as r:
        return int(r.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def host_config(redis_url: str, wait_replicas: int) -> dict:
    b = build_dir()
    return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url},
            "limits": {"max_pending_per_conn": 1024, "frames_per_s": 1000000, "frames_burst": 1000000},
            "plugins": [{"name": "probe", "path": str(b / "tests/host/api/probe.so")},
                        {"name": "chat", "path": str(b / "plugins/chat.so"),
                         "config": {"presence_events": False, "auto_join": False, "wait_replicas": wait_replicas,
                                    "wait_timeout_ms": 500}}]}


async def client(url: str, user: str, window: int, duration: float, answers: list[tuple[float, float]],
                 errors: list[str]) -> int:
    acked = 0
    async with connect(f"{url}/?user={user}", max_size=None, ping_interval=None) as ws:
        room = "r-" + user  # a room of its own: each message is delivered once, to its sender
        await ws.send(json.dumps({"type": "join", "room": room}))
        while json.loads(await ws.recv()).get("type") != "joined":
            pass
        sent_at: dict[str, float] = {}
        n = 0
        until = time.perf_counter() + duration

        async def send_one() -> None:
            nonlocal n
            n += 1
            ref = f"{user}-{n}"
            sent_at[ref] = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "room": room, "text": "x" * 100, "ref": ref}))

        for _ in range(window):
            await send_one()
        while sent_at:
            frame = json.loads(await ws.recv())
            ref = frame.get("ref")
            if frame.get("type") not in ("ack", "error") or ref not in sent_at:
                continue  # its own messages, delivered
            answers.append((sent_at.pop(ref), time.perf_counter()))
            if frame["type"] == "ack":
                acked += 1
            else:
                errors.append(frame.get("code", "?"))
            if time.perf_counter() < until:
                await send_one()
    return acked


def measure(redis: RedisServer, wait_replicas: int, clients: int, window: int, duration: float, tmp: Path) -> dict:
    host = AuroraHost.start(build_dir() / "host/aurora-host", tmp / f"w{wait_replicas}-{time.monotonic_ns()}",
                            host_config(redis.url, wait_replicas))
    try:
        deadline = time.monotonic() + 20
        while host.get("/ready").status != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"aurora-host not ready:\n{host.stderr_tail()}")
            time.sleep(0.05)  # readiness poll, bounded
        answers: list[tuple[float, float]] = []  # (sent, answered), perf_counter
        errors: list[str] = []
        cpu_host0, cpu_redis0 = cpu_seconds(host.pid), cpu_seconds(redis.proc.proc.pid)
        waits0 = wait_calls(redis)

        async def run() -> list[int]:
            return await asyncio.gather(*(client(host.ws_url, f"u{i}", window, duration, answers, errors)
                                          for i in range(clients)))

        acked = sum(asyncio.run(run()))
        elapsed = max(a for _, a in answers) - min(s for s, _ in answers)
        latencies = [a - s for s, a in answers]
        waits = wait_calls(redis) - waits0
        cpu_host = cpu_seconds(host.pid) - cpu_host0
        cpu_redis = cpu_seconds(redis.proc.proc.pid) - cpu_redis0
        q = statistics.quantiles(latencies, n=100)
        return {"wait_replicas": wait_replicas, "acks_per_s": acked / elapsed, "errors": len(errors),
                "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
                "host_us_per_msg": cpu_host * 1e6 / max(1, len(latencies)),
                "redis_us_per_msg": cpu_redis * 1e6 / max(1, len(latencies)),
                "msgs_per_wait": len(latencies) / waits if waits else 0.0}
    finally:
        host.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print("command:", shlex.join([".cache/venv/bin/python", "tests/bench/wait_bench.py", *sys.argv[1:]]))
    master = RedisServer.start()
    replica = RedisServer.start(args=("--replicaof", master.host, str(master.port)))
    try:
        r = redis_py.Redis(host=master.host, port=master.port, decode_responses=True)
        deadline = time.monotonic() + 20
        while r.info("replication").get("connected_slaves") != 1:
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not attach")
            time.sleep(0.05)  # replication readiness poll, bounded
        results: dict[int, list[dict]] = {0: [], 1: []}
        with tempfile.TemporaryDirectory(prefix="aurora-wait-bench-") as tmp:
            for _ in range(args.rounds):
                for w in (0, 1):
                    m = measure(master, w, args.clients, args.window, args.duration, Path(tmp))
                    results[w].append(m)
                    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in m.items()}),
                          flush=True)
        med = {w: {k: statistics.median(m[k] for m in ms) for k in ms[0]} for w, ms in results.items()}
        print("median of the rounds:")
        for w in (0, 1):
            print(f"  wait_replicas={w}: {med[w]['acks_per_s']:.0f} acks/s, ack p50 {med[w]['p50_ms']:.2f} ms, "
                  f"p99 {med[w]['p99_ms']:.2f} ms, aurora-host {med[w]['host_us_per_msg']:.1f} us/msg, "
                  f"redis master {med[w]['redis_us_per_msg']:.1f} us/msg, messages per WAIT "
                  f"{med[w]['msgs_per_wait']:.1f}, errors {med[w]['errors']:.0f}")
        for k in ("acks_per_s", "p50_ms", "p99_ms", "host_us_per_msg", "redis_us_per_msg"):  # not msgs_per_wait: 0 without
            print(f"  ratio wait 1 / wait 0, {k}: {med[1][k] / med[0][k]:.2f}")
        return 0
    finally:
        replica.stop()
        master.stop()


if __name__ == "__main__":
    sys.exit(main())
