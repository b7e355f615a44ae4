"""Starts a real Redis and R aurora-host replicas (probe + chat plugins, on
free loopback ports), runs aurora-bench against them with the arguments
given, prints its output, and stops everything.

    .cache/venv/bin/python tests/bench/run_bench.py --replicas 2 -- \\
        --scenario fanout --subscribers 1000 --publishers 10 --rate 50 --duration 10

The replicas' ports are appended as --ports. Identity comes from the probe
fixture plugin (?user=), so no auth plugin is in the path being measured."""

from __future__ import annotations

import argparse
import re
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
    ap.add_argument("--sweep", help="comma-separated message rates: run the fanout scenario at each "
                    "(with the other bench arguments) and report the highest with no loss and p99 under --p99-ms")
    ap.add_argument("--p99-ms", type=float, default=50.0)
    ap.add_argument("--svg", help="with --sweep: write a plot of deliveries/s vs p99 to this SVG file")
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
        if not args.sweep:
            return subprocess.run(cmd).returncode
        return sweep(cmd, [float(r) for r in args.sweep.split(",")], args.p99_ms, args.svg)
    finally:
        for h in hosts:
            h.stop()
        redis.stop()


def sweep(cmd: list[str], rates: list[float], p99_limit: float, svg: str | None) -> int:
    """Fanout at each message rate; prints one row per rate and the best."""
    rows = []
    print(f"sweep: {' '.join(cmd)} --rate R   (R in {rates})")
    print(f"{'msg/s':>8} {'deliveries/s':>13} {'lost':>8} {'p50 ms':>8} {'p99 ms':>8} {'us/deliv':>9}")
    for rate in rates:
        out = subprocess.run([*cmd, "--scenario", "fanout", "--rate", str(rate)], capture_output=True, text=True).stdout
        m = {k: re.search(pat, out) for k, pat in {
            "dps": r"deliveries/s (\d+)", "lost": r"lost (\d+)", "p50": r"p50 ([\d.]+)", "p99": r"p99 ([\d.]+)",
            "cpu": r"([\d.]+) us per delivery"}.items()}
        if not all(m.values()):
            print(f"{rate:>8.0f}  (no result: {out.strip()[-200:]})")
            continue
        row = {k: float(v.group(1)) for k, v in m.items()}
        row["rate"] = rate
        rows.append(row)
        print(f"{rate:>8.0f} {row['dps']:>13.0f} {row['lost']:>8.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['cpu']:>9.2f}")
    ok = [r for r in rows if r["lost"] == 0 and r["p99"] <= p99_limit]
    if ok:
        best = max(ok, key=lambda r: r["dps"])
        print(f"highest with no loss and p99 <= {p99_limit:g} ms: {best['dps']:.0f} deliveries/s "
              f"(p99 {best['p99']:.2f} ms, {best['cpu']:.2f} us host CPU per delivery)")
    else:
        print(f"no rate met no loss and p99 <= {p99_limit:g} ms")
    if svg and rows:
        write_svg(svg, rows, p99_limit)
        print(f"plot: {svg}")
    return 0


def write_svg(path: str, rows: list[dict], p99_limit: float) -> None:
    """A small line plot (deliveries/s on x, p99 ms on y, log scale), no dependencies."""
    import math
    w, h, pad = 640, 360, 50
    xmax = max(r["dps"] for r in rows) * 1.1
    ymin, ymax = 0.5, max(max(r["p99"] for r in rows), p99_limit) * 2
    def x(v): return pad + (w - 2 * pad) * v / xmax
    def y(v): return h - pad - (h - 2 * pad) * (math.log10(max(v, ymin)) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin))
    pts = " ".join(f"{x(r['dps']):.1f},{y(r['p99']):.1f}" for r in rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{y(p99_limit):.1f}" x2="{w - pad}" y2="{y(p99_limit):.1f}" stroke="red" stroke-dasharray="4"/>',
             f'<text x="{w - pad - 90}" y="{y(p99_limit) - 4:.1f}" fill="red">p99 {p99_limit:g} ms</text>',
             f'<polyline points="{pts}" fill="none" stroke="#2563eb" stroke-width="2"/>']
    for r in rows:
        parts.append(f'<circle cx="{x(r["dps"]):.1f}" cy="{y(r["p99"]):.1f}" r="3" fill="#2563eb"/>')
        parts.append(f'<text x="{x(r["dps"]) + 4:.1f}" y="{y(r["p99"]) - 6:.1f}">{r["p99"]:.1f}</text>')
    for t in range(0, 6):
        v = xmax * t / 5
        parts.append(f'<text x="{x(v) - 15:.1f}" y="{h - pad + 16}">{v / 1000:.0f}k</text>')
    parts.append(f'<text x="{w / 2 - 60}" y="{h - 10}">deliveries per second</text>')
    parts.append(f'<text x="8" y="{pad - 12}">p99 latency, ms (log scale)</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts))


if __name__ == "__main__":
    sys.exit(main())
