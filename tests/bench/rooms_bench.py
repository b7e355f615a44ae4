"""The message path in a private room against a public one (docs/rooms.md):
the rooms plugin checks a room once per connection, at the join, and nothing
per message. This measures it.

Starts a real Redis and FerretDB, then for each layout one aurora-host
(probe for identity, then chat), and runs aurora-bench's rooms scenario
against it with the same arguments:

  none     no rooms plugin (the baseline)
  public   the rooms plugin, the rooms r0.. nobody created (public)
  private  the rooms plugin, r0.. private rooms in MongoDB, each connection
           bench-N a member of the room it joins (r<N % rooms>)

    .cache/venv/bin/python tests/bench/rooms_bench.py --connections 2000 --rooms 200 --rate 2000 --duration 10

Prints aurora-bench's output for each, then host CPU per message and the
latency of each layout, with the ratios to `public`, measured in one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_bench  # noqa: E402  (its paths, support modules and helpers)
from run_bench import AuroraHost, FerretDbServer, RedisServer, build_dir  # noqa: E402


def host_config(layout: str, redis_url: str, mongo_url: str) -> dict:
    b = build_dir()
    plugins = [{"name": "probe", "path": str(b / "tests/host/api/probe.so")}]
    if layout != "none":
        plugins.append({"name": "rooms", "path": str(b / "plugins/rooms.so"),
                        "config": {"rest": False, "redis_prefix": f"bench{uuid.uuid4().hex[:6]}:"}})
    plugins.append({"name": "chat", "path": str(b / "plugins/chat.so"), "config": {"presence_events": False}})
    return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url}, "mongo": {"url": mongo_url},
            "limits": {"send_queue_max_frames": 65536, "send_queue_max_bytes": 64 << 20}, "plugins": plugins}


def make_private(mongo_url: str, db: str, connections: int, rooms: int) -> None:
    import pymongo

    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    d = client[db]
    d["rooms"].insert_many([{"_id": f"r{k}", "type": "private", "title": f"r{k}", "topic": "",
                             "createdBy": f"bench-{k}", "archived": False} for k in range(rooms)])
    d["room_members"].insert_many([{"roomId": f"r{i % rooms}", "userId": f"bench-{i}",
                                    "role": "owner" if i < rooms else "member"} for i in range(connections)])
    client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--layouts", default="none,public,private")
    args = ap.parse_args()
    run_bench.raise_open_files()
    results: dict[str, dict] = {}
    redis, ferret = RedisServer.start(), FerretDbServer.start()
    workdir = Path(tempfile.mkdtemp(prefix="aurora-rooms-bench-"))
    try:
        for layout in args.layouts.split(","):
            db = f"roomsbench_{layout}_{uuid.uuid4().hex[:6]}"
            if layout == "private":
                make_private(ferret.url(db), db, args.connections, args.rooms)
            host = AuroraHost.start(build_dir() / "host/aurora-host", workdir / layout,
                                    host_config(layout, redis.url, ferret.url(db)))
            try:
                deadline = time.monotonic() + run_bench.READY_DEADLINE_S
                while host.get("/ready").status != 200:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{layout}: not ready:\n{host.stderr_tail()}")
                    time.sleep(0.05)  # readiness poll, bounded
                print(f"\n== {layout} ==", flush=True)
                cmd = [str(build_dir() / "tests/bench/aurora-bench"), "--scenario", "rooms",
                       "--connections", str(args.connections), "--rooms", str(args.rooms), "--rate", str(args.rate),
                       "--duration", str(args.duration), "--ports", str(host.port), "--auth", "query"]
                rc, obj = run_bench.run_aurora_bench(cmd, workdir / f"{layout}.json")
                if rc != 0 or obj is None:
                    print(f"rooms_bench: {layout}: aurora-bench exited {rc}", file=sys.stderr)
                    return 1
                results[layout] = obj
                if layout != "none":
                    checks = host.metrics().total("aurora_rooms_checks_total")
                    refused = host.metrics().total("aurora_rooms_refused_total")
                    print(f"rooms plugin: {checks:.0f} checks, {refused:.0f} refused")
                    if refused:
                        print(f"rooms_bench: {layout}: joins were refused", file=sys.stderr)
                        return 1
            finally:
                host.stop()
    finally:
        redis.stop()
        ferret.stop()
    print("\ncommand: " + " ".join(sys.argv))
    print(f"{'layout':<9} {'us cpu/msg':>11} {'x public':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6}")
    base = results.get("public", {}).get("results", {}).get("host_cpu_us_per_message")
    for layout, obj in results.items():
        r = obj.get("results", {})
        us = r.get("host_cpu_us_per_message", 0.0)
        ratio = f"{us / base:.2f}" if base else "-"
        print(f"{layout:<9} {us:>11.1f} {ratio:>9} {r.get('p50_ms', 0):>8.2f} {r.get('p99_ms', 0):>8.2f} "
              f"{r.get('lost', 0):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
