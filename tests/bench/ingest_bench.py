"""Ingest benchmark (not a test): sustained messages/s persisted into
FerretDB, and the persistence lag at a fixed send rate.

Starts a real Redis and FerretDB (SQLite backend) on free loopback ports and
aurora-host processes running only the ingest plugin, then:

  1. throughput: XADDs --backlog entries (the chat plugin's field layout),
     starts the ingest hosts and times the drain (every entry stored and
     acknowledged) -> messages/s persisted;
  2. lag: sends --rate entries/s for --duration s into running hosts and
     reads the plugin's persist_lag_seconds histogram (stream id time ->
     insert_many acknowledged by MongoDB, i.e. the document is present)
     -> p50/p99, interpolated inside the histogram's buckets.

    .cache/venv/bin/python tests/bench/ingest_bench.py --processes 1 --workers 2 --batch 50 \\
        --backlog 50000 --rate 2000 --duration 20

Prints the exact command line first, so the numbers can be reproduced."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import redis as redis_py  # noqa: E402

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import FerretDbServer, RedisServer  # noqa: E402

STREAM = "chat:messages"


def fields(i: int) -> dict:
    return {"roomId": f"room{i % 20}", "userId": f"{i % 1000 + 1:024x}", "text": f"benchmark message {i}",
            "username": f"user{i % 1000}"}


def xadd_range(r, start: int, n: int) -> None:
    p = r.pipeline(transaction=False)
    for i in range(start, start + n):
        p.xadd(STREAM, fields(i))
    p.execute()


def wait_for_consumers(r, n: int, deadline_s: float = 30.0) -> None:
    """Until the consumer group exists with n consumers (readiness, bounded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if len(r.xinfo_consumers(STREAM, "mongo_workers")) >= n:
                return
        except Exception:  # noqa: BLE001 - no stream or group yet
            pass
        time.sleep(0.05)  # polling the group, bounded
    raise SystemExit(f"the ingest workers did not join the consumer group within {deadline_s:.0f} s")


def drained(r) -> bool:
    for g in r.xinfo_groups(STREAM):
        if g["name"] == "mongo_workers":
            return g["lag"] == 0 and g["pending"] == 0
    return False


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """buckets: cumulative (upper bound, count) pairs, +Inf last."""
    total = buckets[-1][1]
    want = q * total
    lo_bound, lo_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= want:
            if bound == float("inf"):
                return lo_bound
            frac = (want - lo_count) / (count - lo_count) if count > lo_count else 1.0
            return lo_bound + (bound - lo_bound) * frac
        lo_bound, lo_count = bound, count
    return lo_bound


def lag_buckets(hosts: list[AuroraHost]) -> list[tuple[float, float]]:
    acc: dict[float, float] = {}
    for h in hosts:
        for labels, v in h.metrics().samples.get("aurora_ingest_persist_lag_seconds_bucket", []):
            le = float(labels["le"])
            acc[le] = acc.get(le, 0.0) + v
    return sorted(acc.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=1, help="ingest-only aurora-host processes")
    ap.add_argument("--workers", type=int, default=2, help="consumer threads per process")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--backlog", type=int, default=50000, help="entries for the throughput run")
    ap.add_argument("--rate", type=float, default=2000, help="entries/s for the lag run")
    ap.add_argument("--duration", type=float, default=20, help="seconds of the lag run")
    args = ap.parse_args()
    print("command:", shlex.join([".cache/venv/bin/python", "tests/bench/ingest_bench.py"] + sys.argv[1:]))

    binary = build_dir() / "host" / "aurora-host"
    plugin = build_dir() / "plugins" / "ingest.so"
    with RedisServer.start() as redis_srv, FerretDbServer.start() as mongo_srv, \
            tempfile.TemporaryDirectory(prefix="aurora-ingest-bench-") as tmp:
        r = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)

        def start_hosts(tag: str) -> list[AuroraHost]:
            cfg = {"log": {"level": "warn"}, "redis": {"url": redis_srv.url},
                   "mongo": {"url": mongo_srv.url(f"bench_{tag}")},
                   "plugins": [{"name": "ingest", "path": str(plugin),
                                "config": {"workers": args.workers, "batch": args.batch, "history": False}}]}
            return [AuroraHost.start(binary, Path(tmp) / f"{tag}{i}", cfg) for i in range(args.processes)]

        def stop(hosts):
            for h in hosts:
                h.stop()

        # 1. Throughput: drain a backlog.
        for k in range(0, args.backlog, 1000):
            xadd_range(r, k, min(1000, args.backlog - k))
        t0 = time.monotonic()
        hosts = start_hosts("throughput")
        while not drained(r):
            time.sleep(0.05)  # polling the group, the measured quantity
        dt = time.monotonic() - t0
        persisted = sum(h.metrics().total("aurora_ingest_persisted_total") for h in hosts)
        stop(hosts)
        print(f"throughput: {args.backlog} entries drained in {dt:.2f} s -> {args.backlog / dt:,.0f} msgs/s "
              f"persisted ({int(persisted)} inserted; {args.processes} process(es) x {args.workers} worker(s), "
              f"batch {args.batch}; includes host start-up)")

        # 2. Lag at a fixed rate, on a fresh stream and database.
        r.delete(STREAM)
        hosts = start_hosts("lag")
        wait_for_consumers(r, args.processes * args.workers)
        total = int(args.rate * args.duration)
        sent = 0
        start = time.monotonic()
        while sent < total:
            due = min(total, int((time.monotonic() - start) * args.rate) + 1)
            if due > sent:
                xadd_range(r, sent, due - sent)
                sent = due
            time.sleep(0.005)  # pacing the send rate
        send_s = time.monotonic() - start
        deadline = time.monotonic() + 120
        while not drained(r) and time.monotonic() < deadline:
            time.sleep(0.05)
        buckets = lag_buckets(hosts)
        stop(hosts)
        n = buckets[-1][1] if buckets else 0
        print(f"lag: {total} entries at {total / send_s:,.0f} msgs/s for {send_s:.1f} s; {int(n)} stored; "
              f"persistence lag p50 {quantile(buckets, 0.5) * 1000:.1f} ms, p99 {quantile(buckets, 0.99) * 1000:.1f} ms "
              f"(interpolated in buckets {[b for b, _ in buckets[:-1]]} s)")
        r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
