"""Login latency while registrations flood the auth plugin (docs/auth.md,
"Registration"). Not a test: it prints numbers, asserts nothing.

Starts its own redis-server, FerretDB and aurora-host (auth only, bcrypt cost
10, 2 workers, 127.0.0.1 as a trusted proxy so X-Forwarded-For gives each
registration its own client address; otherwise the plugin's defaults),
measures serial logins of one user
before and during N concurrent registrations, and prints the latencies.

    AURORA_BUILD_DIR=build-auth AURORA_FERRETDB=.cache/bin/ferretdb \\
        .cache/venv/bin/python tests/plugins/auth/measure_login_under_flood.py [--n 150] [--same-addr]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "support"))

from aurora_host import AuroraHost  # noqa: E402
from real_servers import FerretDbServer, RedisServer  # noqa: E402

from auth_support import HOST, ArrivalProbe, auth_host_config, post_json, require, unique  # noqa: E402


def timed_login(host, name: str) -> tuple[int, float]:
    t0 = time.monotonic()
    r = post_json(host, "/api/auth/login", {"username": name, "password": "password-1"}, timeout=120)
    return r.status, time.monotonic() - t0


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"n={len(xs)} median={statistics.median(xs) * 1000:.0f} ms "
            f"p90={xs[int(len(xs) * 0.9)] * 1000:.0f} ms max={xs[-1] * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150, help="concurrent registrations")
    ap.add_argument("--same-addr", action="store_true", help="all registrations from one client address")
    ap.add_argument("--cost", type=int, default=10, help="bcrypt cost")
    args = ap.parse_args()

    with RedisServer.start() as redis_server, FerretDbServer.start() as mongo_server, \
            tempfile.TemporaryDirectory() as tmp:
        cfg = auth_host_config(redis_server, mongo_server, with_echo=False, trusted_proxies=["127.0.0.1"],
                               auth_config={"bcrypt_cost": args.cost})
        for key in ("register_max_per_addr", "max_pending_per_addr"):  # the plugin's defaults, not the tests'
            cfg["plugins"][0]["config"].pop(key)
        host = AuroraHost.start(Path(require(HOST)), Path(tmp), cfg)
        try:
            name = unique("owner")
            assert post_json(host, "/api/auth/register", {"username": name, "password": "password-1"},
                             headers={"X-Forwarded-For": "198.51.100.1"}).status == 200
            idle = [timed_login(host, name)[1] for _ in range(10)]

            def register(i: int) -> tuple[int, float]:
                addr = "203.0.113.7" if args.same_addr else f"10.{i // 250}.{i % 250}.1"
                t0 = time.monotonic()
                r = post_json(host, "/api/auth/register", {"username": unique("flood"), "password": "password-1"},
                              headers={"X-Forwarded-For": addr}, timeout=300)
                return r.status, time.monotonic() - t0

            during: list[float] = []
            statuses: list[int] = []
            t_flood = time.monotonic()
            arrivals = ArrivalProbe(host)
            with ThreadPoolExecutor(args.n) as pool:
                futures = [pool.submit(register, i) for i in range(args.n)]
                arrivals.wait(args.n, timeout=120)  # the whole flood is in the host before the first login
                while not all(f.done() for f in futures):
                    status, dt = timed_login(host, name)
                    statuses.append(status)
                    during.append(dt)
                results = [f.result() for f in futures]
            flood_s = time.monotonic() - t_flood
            print(f"logins idle:            {summary(idle)}")
            if during:
                print(f"logins during flood:    {summary(during)} statuses={dict(Counter(statuses))}")
            print(f"{args.n} registrations ({'one address' if args.same_addr else 'distinct addresses'}): "
                  f"{dict(Counter(s for s, _ in results))} in {flood_s:.1f} s; "
                  f"latency {summary([d for _, d in results])}")
        finally:
            host.stop()


if __name__ == "__main__":
    threading.stack_size(256 * 1024)
    main()
