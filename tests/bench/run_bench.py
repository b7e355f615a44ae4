"""Starts a real Redis and R aurora-host replicas (probe + chat plugins, on
free loopback ports), runs aurora-bench against them with the arguments
given, prints its output, and stops everything.

    .cache/venv/bin/python tests/bench/run_bench.py --replicas 2 -- \\
        --scenario fanout --subscribers 1000 --publishers 10 --rate 50 --duration 10

The replicas' ports are appended as --ports. Identity comes from the probe
fixture plugin (?user=), so no auth plugin is in the path being measured."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import RedisServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--profile", choices=["chat", "echo"], default="chat",
                    help="chat: probe + chat plugins (the real message path); echo: the host alone with echo")
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    bench = [a for a in args.bench_args if a != "--"]
    b = build_dir()
    redis = RedisServer.start()
    hosts = []
    try:
        cfg = {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis.url},
               "limits": {"send_queue_max_frames": 65536, "send_queue_max_bytes": 64 << 20},
               "plugins": [{"name": "probe", "path": str(b / "tests/host/api/probe.so")},
                           {"name": "chat", "path": str(b / "plugins/chat.so"),
                            # join/leave events would add N frames per connect (O(N^2) to set up)
                            "config": {"presence_events": False}}]}
        if args.profile == "echo":
            cfg = {"log": {"level": "warn", "format": "json"}, "allow_anonymous": True,
                   "plugins": [{"name": "echo", "path": str(b / "plugins/echo.so")}]}
        for i in range(args.replicas):
            h = AuroraHost.start(b / "host/aurora-host", Path(tempfile.mkdtemp(prefix="aurora-bench-")), cfg)
            deadline = time.monotonic() + 10
            while h.get("/ready").status != 200:
                if time.monotonic() > deadline:
                    raise SystemExit("replica not ready")
                time.sleep(0.05)  # readiness poll, bounded
            hosts.append(h)
        ports = ",".join(str(h.port) for h in hosts)
        cmd = [str(b / "tests/bench/aurora-bench"), *bench, "--ports", ports]
        return subprocess.run(cmd).returncode
    finally:
        for h in hosts:
            h.stop()
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
