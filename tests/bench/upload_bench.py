"""Upload benchmark (not a test): what a file costs through POST
/api/uploads into GridFS and back through GET /api/uploads/{id}.

Starts a real Redis and FerretDB (--backend sqlite, the fixtures' default;
--backend postgresql: on a PostgreSQL started like the fixtures') on free
loopback ports and one aurora-host with the ingest plugin serving uploads
(no consumers), then for each --sizes file size: --count uploads one after
another, then --count downloads of them, then --count uploads from
--clients threads at once. Prints, per size: latency p50/p99 of each,
MB/s, the CPU the host and the store spent per MB, and the host's peak RSS.

    .cache/venv/bin/python tests/bench/upload_bench.py --sizes 65536,1048576,10485760 --count 20 \\
        --clients 4 [--backend postgresql]

Prints the exact command line first, so the numbers can be reproduced."""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import http.client
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aurora_host import AuroraHost, build_dir  # noqa: E402
from ingest_bench import cpu_seconds, tree_cpu_seconds  # noqa: E402
from real_servers import FerretDbServer, PostgresServer, RedisServer  # noqa: E402

SECRET = "upload-bench-secret-at-least-32-bytes"
USER = "65f0c0ffee0123456789abcd"


def make_token(claims: dict, secret: str) -> str:
    """HS256, as the auth plugin issues them."""
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest())


def body(size: int, i: int) -> bytes:
    """A PNG signature then bytes that vary per file (the store sees distinct files)."""
    head = b"\x89PNG\r\n\x1a\n" + i.to_bytes(8, "big")
    pattern = bytes((k * 31 + i) & 0xFF for k in range(4096))
    return (head + pattern * (size // 4096 + 1))[:size]


def request(port: int, method: str, target: str, token: str, data: bytes | None = None) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        t0 = time.perf_counter()
        conn.request(method, target, body=data, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        out = resp.read()
        return resp.status, out, time.perf_counter() - t0
    finally:
        conn.close()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="65536,1048576,10485760", help="file sizes in bytes, comma-separated")
    ap.add_argument("--count", type=int, default=20, help="files per size and phase")
    ap.add_argument("--clients", type=int, default=4, help="threads uploading at once in the concurrent phase")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("command:", shlex.join([".cache/venv/bin/python", "tests/bench/upload_bench.py"] + sys.argv[1:]), flush=True)
    token = make_token({"userId": USER, "username": "bench", "exp": int(time.time()) + 3600}, SECRET)
    with contextlib.ExitStack() as servers:
        redis_srv = servers.enter_context(RedisServer.start())
        pg_srv = servers.enter_context(PostgresServer.start()) if args.backend == "postgresql" else None
        opts = {"postgresql_url": pg_srv.create_database("bench")} if pg_srv else {}
        mongo_srv = servers.enter_context(FerretDbServer.start(**opts))
        tmp = servers.enter_context(tempfile.TemporaryDirectory(prefix="aurora-upload-bench-"))
        cfg = {"log": {"level": "warn"}, "redis": {"url": redis_srv.url}, "mongo": {"url": mongo_srv.url("bench")},
               "jwt": {"secret": SECRET},
               "plugins": [{"name": "ingest", "path": str(build_dir() / "plugins" / "ingest.so"),
                            "config": {"workers": 0, "history": True, "uploads": True, "upload_quota_bytes": 0,
                                       "upload_max_bytes": max(sizes) + 1024, "upload_workers": args.clients}}]}
        host = AuroraHost.start(build_dir() / "host" / "aurora-host", Path(tmp) / "h", cfg)
        servers.callback(host.stop)
        deadline = time.monotonic() + 30
        while host.get("/ready").status != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the host was not ready within 30 s")
            time.sleep(0.05)  # polling /ready, bounded
        store_pid = mongo_srv.proc.proc.pid

        def store_cpu() -> float:
            return cpu_seconds(store_pid) + (tree_cpu_seconds(pg_srv.proc.proc.pid) if pg_srv else 0.0)

        print(f"backend {args.backend}, {args.count} files per size and phase, {args.clients} clients at once")
        for size in sizes:
            files = [body(size, i) for i in range(args.count)]
            mb = size * args.count / 1e6
            cpu0 = (cpu_seconds(host.pid), store_cpu())
            ups, ids = [], []
            for f in files:
                status, out, dt = request(host.port, "POST", "/api/uploads?name=f.png", token, f)
                if status != 201:
                    raise SystemExit(f"upload of {size} bytes: {status} {out[:200]!r}")
                ups.append(dt)
                ids.append(json.loads(out)["id"])
            cpu1 = (cpu_seconds(host.pid), store_cpu())
            downs = []
            for i, id_ in enumerate(ids):
                status, out, dt = request(host.port, "GET", f"/api/uploads/{id_}", token)
                if status != 200 or out != files[i]:
                    raise SystemExit(f"download of {size} bytes: {status}, {len(out)} bytes")
                downs.append(dt)
            cpu2 = (cpu_seconds(host.pid), store_cpu())
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                statuses = list(pool.map(lambda f: request(host.port, "POST", "/api/uploads?name=c.png", token, f)[0],
                                         files))
            wall = time.perf_counter() - t0
            if any(s != 201 for s in statuses):
                raise SystemExit(f"concurrent uploads of {size} bytes: {statuses}")
            print(f"{size:>9} B  upload p50 {statistics.median(ups) * 1e3:7.1f} ms p99 {pct(ups, 0.99) * 1e3:7.1f} ms "
                  f"({mb / sum(ups):6.1f} MB/s; host {(cpu1[0] - cpu0[0]) / mb * 1e3:6.1f} ms CPU/MB, "
                  f"store {(cpu1[1] - cpu0[1]) / mb * 1e3:6.1f} ms CPU/MB)")
            print(f"{'':>9}    download p50 {statistics.median(downs) * 1e3:7.1f} ms p99 {pct(downs, 0.99) * 1e3:7.1f} ms "
                  f"({mb / sum(downs):6.1f} MB/s; host {(cpu2[0] - cpu1[0]) / mb * 1e3:6.1f} ms CPU/MB, "
                  f"store {(cpu2[1] - cpu1[1]) / mb * 1e3:6.1f} ms CPU/MB)")
            print(f"{'':>9}    {args.clients} clients at once: {mb / wall:6.1f} MB/s; host peak RSS "
                  f"{rss_peak_kb(host.pid) / 1024:.0f} MiB", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
