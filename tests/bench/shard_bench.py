"""Redis Cluster: the same load on 1 master and on 3 masters, and where
Redis spends its CPU (docs/performance.md, "Redis Cluster: 1 shard vs 3").

For each layout, a Redis Cluster on loopback (one node serving every slot,
or `redis-cli --cluster create` with three masters, no replicas), two
aurora-host replicas (probe + chat, redis.mode "cluster", stream_shards 8)
and aurora-bench's rooms and fanout scenarios against them. Around each run
the CPU time of every Redis master is read from /proc: the table gives Redis
CPU per message in all, on the busiest master, and each master's share.

    .cache/venv/bin/python tests/bench/shard_bench.py
    .cache/venv/bin/python tests/bench/shard_bench.py --connections 2000 --rooms 200 --rate 1000 --duration 5

Loopback and one machine: the masters share its two cores with the hosts
and the generator. What the layout changes is how Redis's work is split,
which is what a cluster is for; absolute numbers are this machine's."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "support"))

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import ClusterTopology  # noqa: E402

READY_DEADLINE_S = 30.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks of 10 ms


def host_config(nodes: list[str]) -> dict:
    b = build_dir()
    return {"log": {"level": "warn", "format": "json"},
            "redis": {"mode": "cluster", "nodes": nodes[:2], "stream_shards": 8},
            "limits": {"send_queue_max_frames": 65536, "send_queue_max_bytes": 64 << 20},
            "plugins": [{"name": "probe", "path": str(b / "tests/host/api/probe.so")},
                        {"name": "chat", "path": str(b / "plugins/chat.so"), "config": {"presence_events": False}}]}


def run_layout(masters: int, scenarios: list[list[str]], workdir: Path) -> list[dict]:
    cluster = ClusterTopology.start(masters=masters, replicas=0)
    hosts: list[AuroraHost] = []
    out = []
    try:
        for i in range(2):
            h = AuroraHost.start(build_dir() / "host/aurora-host", workdir / f"m{masters}-h{i}", host_config(cluster.addresses))
            hosts.append(h)
            deadline = time.monotonic() + READY_DEADLINE_S
            while h.get("/ready").status != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"aurora-host not ready:\n{h.stderr_tail()}")
                time.sleep(0.05)  # readiness poll, bounded
        pids = [n.proc.proc.pid for n in cluster.nodes]
        for args in scenarios:
            json_path = workdir / "run.json"
            json_path.unlink(missing_ok=True)
            cmd = [str(build_dir() / "tests/bench/aurora-bench"), *args, "--ports",
                   ",".join(str(h.port) for h in hosts), "--json", str(json_path)]
            before = [cpu_seconds(p) for p in pids]
            rc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            used = [cpu_seconds(p) - b for p, b in zip(pids, before)]
            if rc.returncode != 0:
                raise SystemExit(f"aurora-bench exited {rc.returncode}: {rc.stdout[-1500:]}{rc.stderr[-1500:]}")
            r = json.loads(json_path.read_text())["results"]
            sent = max(1, int(r.get("sent", 0)))
            out.append({"masters": masters, "scenario": args[1], "sent": sent, "delivered": r.get("delivered"),
                        "p50_ms": r.get("p50_ms"), "p99_ms": r.get("p99_ms"),
                        # fanout reports per delivery only: per message is that times the deliveries per message
                        "host_cpu_us_per_message": r.get("host_cpu_us_per_message")
                        or r.get("host_cpu_us_per_delivery", 0) * r.get("delivered", 0) / sent,
                        "redis_cpu_us_per_message": sum(used) * 1e6 / sent,
                        "busiest_master_us_per_message": max(used) * 1e6 / sent,
                        "master_shares": [round(u / max(sum(used), 1e-9), 2) for u in used]})
    finally:
        for h in hosts:
            h.stop()
        cluster.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--rooms", type=int, default=100)
    ap.add_argument("--rate", type=float, default=500, help="messages per second (rooms scenario)")
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--fanout-rate", type=float, default=100)
    ap.add_argument("--duration", type=float, default=5)
    a = ap.parse_args()
    scenarios = [
        ["--scenario", "rooms", "--connections", str(a.connections), "--rooms", str(a.rooms), "--rate", str(a.rate),
         "--duration", str(a.duration)],
        ["--scenario", "fanout", "--subscribers", str(a.subscribers), "--publishers", "5", "--rate",
         str(a.fanout_rate), "--duration", str(a.duration)],
    ]
    print("command:", shlex.join([".cache/venv/bin/python", "tests/bench/shard_bench.py", *sys.argv[1:]]))
    with tempfile.TemporaryDirectory(prefix="aurora-shard-bench-") as tmp:
        rows = run_layout(1, scenarios, Path(tmp)) + run_layout(3, scenarios, Path(tmp))
    print(f"{'masters':>7} {'scenario':>8} {'sent':>7} {'delivered':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'host us/msg':>11} {'redis us/msg':>12} {'busiest us/msg':>14}  shares")
    for r in rows:
        print(f"{r['masters']:>7} {r['scenario']:>8} {r['sent']:>7} {r['delivered']:>9} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['host_cpu_us_per_message']:>11.1f} {r['redis_cpu_us_per_message']:>12.1f} "
              f"{r['busiest_master_us_per_message']:>14.1f}  {r['master_shares']}")
    for scenario in ("rooms", "fanout"):
        one, three = (next(r for r in rows if r["masters"] == m and r["scenario"] == scenario) for m in (1, 3))
        print(f"{scenario}: busiest master's CPU per message, 3 masters / 1 master = "
              f"{three['busiest_master_us_per_message'] / max(one['busiest_master_us_per_message'], 1e-9):.2f}; "
              f"all of Redis = {three['redis_cpu_us_per_message'] / max(one['redis_cpu_us_per_message'], 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
