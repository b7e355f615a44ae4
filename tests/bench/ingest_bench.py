"""Ingest benchmark (not a test): sustained messages/s persisted into
FerretDB, and the persistence lag at a fixed send rate.

Starts a real Redis and FerretDB (--backend sqlite, the default: started as
the test fixtures start it unless --sqlite-synchronous /
--ferretdb-batch-size say otherwise; --backend postgresql: on a PostgreSQL
15 started like the fixtures' postgres_server) on free loopback ports and
aurora-host processes running only the ingest plugin, then:

  1. throughput: XADDs --backlog entries (the chat plugin's field layout),
     starts the ingest hosts and times the drain (every entry stored and
     acknowledged) -> messages/s persisted, including the hosts' start-up;
     also the steady rate (entries acknowledged between 10 % and 90 % of the
     backlog, over that time) and the CPU time each process spent per
     message (FerretDB, Redis, the hosts);
  2. lag: sends --rate entries/s for --duration s into running hosts and
     reads the plugin's persist_lag_seconds histogram (stream id time ->
     insert_many acknowledged by MongoDB, i.e. the document is present)
     -> p50/p99, interpolated inside the histogram's buckets. The producer
     (this process, pipelined XADDs every 5 ms) reports how far it fell
     behind its schedule: if it did, the rate was not reached.

    .cache/venv/bin/python tests/bench/ingest_bench.py --processes 1 --workers 2 --batch 500 \\
        --backlog 100000 --rate 5000 --duration 20 [--backend postgresql]

The store's CPU is its whole process tree (PostgreSQL's backends included).

Prints the exact command line first, so the numbers can be reproduced;
--json PATH appends one JSON object per run (scenario, params, results,
command) for tests/bench/run_bench.py."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import redis as redis_py  # noqa: E402

from aurora_host import AuroraHost, build_dir  # noqa: E402
from real_servers import FERRETDB_INSERT_BATCH_SIZE, FerretDbServer, PostgresServer, RedisServer  # noqa: E402

STREAM = "chat:messages"
GROUP = "mongo_workers"
PACE_S = 0.005  # the producer sends a batch each time 5 ms worth of entries is due


def fields(i: int) -> dict:
    return {"roomId": f"room{i % 20}", "userId": f"{i % 1000 + 1:024x}", "text": f"benchmark message {i}",
            "username": f"user{i % 1000}"}


def xadd_range(r, start: int, n: int) -> None:
    p = r.pipeline(transaction=False)
    for i in range(start, start + n):
        p.xadd(STREAM, fields(i))
    p.execute()


def group_info(r) -> dict | None:
    try:
        for g in r.xinfo_groups(STREAM):
            if g["name"] == GROUP:
                return g
    except redis_py.ResponseError:  # no stream yet
        pass
    return None


def wait_for_consumers(r, n: int, deadline_s: float = 30.0) -> None:
    """Until the consumer group exists with n consumers (readiness, bounded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if len(r.xinfo_consumers(STREAM, GROUP)) >= n:
                return
        except redis_py.ResponseError:  # no stream or group yet
            pass
        time.sleep(0.05)  # polling the group, bounded
    raise SystemExit(f"the ingest workers did not join the consumer group within {deadline_s:.0f} s")


def wait_until_ready(hosts: list[AuroraHost], deadline_s: float = 30.0) -> None:
    """Until every host answers /ready 200: its indexes exist and the store
    answers, so that the lag run measures a running worker, not its start."""
    deadline = time.monotonic() + deadline_s
    for h in hosts:
        while h.get("/ready").status != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"an ingest host was not ready within {deadline_s:.0f} s")
            time.sleep(0.05)  # polling /ready, bounded


def acked(g: dict | None) -> int:
    """Entries read by the group and no longer pending: stored and acknowledged."""
    return (g.get("entries-read") or 0) - g["pending"] if g else 0  # Redis >= 7.0


def drained(g: dict | None) -> bool:
    return g is not None and g["lag"] == 0 and g["pending"] == 0


def check_alive(hosts: list[AuroraHost]) -> None:
    for h in hosts:
        if not h.running():
            raise SystemExit(f"an ingest host (pid {h.pid}) exited during the run; its stderr:\n{h.stderr_tail()}")


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of pid (schedstat: nanoseconds, not ticks)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return total / 1e9


def tree_cpu_seconds(root: int) -> float:
    """CPU time of root and every process below it (PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # a process that just exited
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_seconds(pid)
        todo.extend(children.get(pid, []))
    return total


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


def lag_buckets(hosts: list[AuroraHost], family: str = "aurora_ingest_persist_lag_seconds") -> list[tuple[float, float]]:
    """The cumulative buckets of a histogram, summed over the hosts."""
    acc: dict[float, float] = {}
    for h in hosts:
        for labels, v in h.metrics().samples.get(family + "_bucket", []):
            le = float(labels["le"])
            acc[le] = acc.get(le, 0.0) + v
    return sorted(acc.items())


def persisted(hosts: list[AuroraHost]) -> int:
    return int(sum(h.metrics().total("aurora_ingest_persisted_total") for h in hosts))


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=1, help="ingest-only aurora-host processes")
    ap.add_argument("--workers", type=int, default=2, help="consumer threads per process")
    ap.add_argument("--batch", type=int, default=500, help="the plugin's batch (XREADGROUP COUNT, insert_many)")
    ap.add_argument("--backlog", type=int, default=100000, help="entries for the throughput run")
    ap.add_argument("--rate", type=float, default=5000, help="entries/s for the lag run")
    ap.add_argument("--duration", type=float, default=20, help="seconds of the lag run")
    ap.add_argument("--search", choices=("true", "false"), default="false",
                    help="the plugin's search: each message's words stored with it and indexed (docs/ingest.md, Search)")
    ap.add_argument("--secondary-indexes", choices=("true", "false"), default="true",
                    help="the plugin's secondary_indexes ({roomId, createdAt} and {userId} besides streamId)")
    ap.add_argument("--sqlite-synchronous", choices=("normal", "full"), default=None,
                    help="FerretDB's SQLite synchronous pragma (default: the fixtures', normal)")
    ap.add_argument("--ferretdb-batch-size", type=int, default=None,
                    help=f"FerretDB's --test-batch-size, documents per SQLite transaction "
                         f"(default: the fixtures', {FERRETDB_INSERT_BATCH_SIZE}; FerretDB's own is 100)")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                    help="FerretDB's backend (postgresql: a PostgreSQL 15 started for the run)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="append the run's results to PATH as one JSON line")
    args = ap.parse_args()
    if args.backend == "postgresql" and (args.sqlite_synchronous or args.ferretdb_batch_size):
        ap.error("--sqlite-synchronous and --ferretdb-batch-size are for --backend sqlite")
    command = shlex.join([".cache/venv/bin/python", "tests/bench/ingest_bench.py"] + sys.argv[1:])
    print("command:", command, flush=True)

    ferret_opts: dict = {}
    if args.sqlite_synchronous:
        ferret_opts["sqlite_pragmas"] = (f"synchronous({args.sqlite_synchronous})",)
    if args.ferretdb_batch_size:
        ferret_opts["insert_batch_size"] = args.ferretdb_batch_size
    binary = build_dir() / "host" / "aurora-host"
    plugin = build_dir() / "plugins" / "ingest.so"
    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with contextlib.ExitStack() as servers:
        redis_srv = servers.enter_context(RedisServer.start())
        pg_srv = servers.enter_context(PostgresServer.start()) if args.backend == "postgresql" else None
        if pg_srv:
            ferret_opts["postgresql_url"] = pg_srv.create_database("bench")
        mongo_srv = servers.enter_context(FerretDbServer.start(**ferret_opts))
        tmp = servers.enter_context(tempfile.TemporaryDirectory(prefix="aurora-ingest-bench-"))
        r = redis_py.Redis.from_url(redis_srv.url, decode_responses=True)
        ferret_pid, redis_pid = mongo_srv.proc.proc.pid, redis_srv.proc.proc.pid

        def store_cpu() -> float:  # FerretDB, and PostgreSQL's processes
            return cpu_seconds(ferret_pid) + (tree_cpu_seconds(pg_srv.proc.proc.pid) if pg_srv else 0.0)

        def start_hosts(tag: str) -> list[AuroraHost]:
            cfg = {"log": {"level": "warn"}, "redis": {"url": redis_srv.url},
                   "mongo": {"url": mongo_srv.url(f"bench_{tag}")},
                   "plugins": [{"name": "ingest", "path": str(plugin),
                                "config": {"workers": args.workers, "batch": args.batch, "history": False,
                                           "secondary_indexes": args.secondary_indexes == "true",
                                           "search": args.search == "true"}}]}
            return [AuroraHost.start(binary, Path(tmp) / f"{tag}{i}", cfg) for i in range(args.processes)]

        def stop(hosts):
            for h in hosts:
                h.stop()

        # 1. Throughput: drain a backlog.
        for k in range(0, args.backlog, 1000):
            xadd_range(r, k, min(1000, args.backlog - k))
        cpu0 = {"store": store_cpu(), "redis": cpu_seconds(redis_pid)}
        t0 = time.monotonic()
        hosts = start_hosts("throughput")
        marks: dict[float, tuple[float, int]] = {}
        deadline = t0 + max(120.0, args.backlog / 500)  # a bound for a stuck run (500/s), not an expectation
        while True:
            g = group_info(r)
            now, done = time.monotonic(), acked(g)
            for q in (0.1, 0.9):
                if q not in marks and done >= q * args.backlog:
                    marks[q] = (now, done)
            if drained(g):
                break
            check_alive(hosts)
            if now > deadline:
                raise SystemExit(f"the backlog was not drained within {deadline - t0:.0f} s ({done} acknowledged)")
            time.sleep(0.02)  # polling the group, the measured quantity
        dt = time.monotonic() - t0
        cpu = {"store": store_cpu() - cpu0["store"], "redis": cpu_seconds(redis_pid) - cpu0["redis"],
               "hosts": sum(cpu_seconds(h.pid) for h in hosts)}
        inserted = persisted(hosts)
        stop(hosts)
        (ta, na), (tb, nb) = marks[0.1], marks[0.9]
        steady = (nb - na) / (tb - ta) if tb > ta and nb > na else None
        per_msg_us = {k: round(v / args.backlog * 1e6, 1) for k, v in cpu.items()}
        print(f"throughput: {args.backlog} entries drained in {dt:.2f} s -> {args.backlog / dt:,.0f} msgs/s "
              f"persisted ({inserted} inserted; {args.processes} process(es) x {args.workers} worker(s), "
              f"batch {args.batch}; includes host start-up)")
        print(f"  steady (10 % -> 90 % acknowledged): "
              f"{f'{steady:,.0f} msgs/s' if steady else 'not measurable (backlog too small)'}; CPU per message: "
              + ", ".join(f"{k} {v} us" for k, v in per_msg_us.items())
              + f"; store ({args.backend}) busy {cpu['store'] / dt:.2f} of {os.cpu_count()} cores", flush=True)

        # 2. Lag at a fixed rate, on a fresh stream and database.
        r.delete(STREAM)
        hosts = start_hosts("lag")
        wait_for_consumers(r, args.processes * args.workers)
        wait_until_ready(hosts)
        total = int(args.rate * args.duration)
        sent, behind_max = 0, 0.0
        producer_cpu0 = time.process_time()
        start = time.monotonic()
        # An absolute schedule: entry i is due at start + i / rate. The
        # producer sleeps until a batch of PACE_S worth is due, then sends
        # everything due by then in one pipeline (no drift, no fixed sleep).
        batch = max(1, int(args.rate * PACE_S))
        while sent < total:
            wake_at = start + (min(total, sent + batch) - 1) / args.rate
            time.sleep(max(0.0, wake_at - time.monotonic()))  # until the next batch is due
            elapsed = time.monotonic() - start
            due = min(total, int(elapsed * args.rate) + 1)
            # How late the oldest unsent entry is: the producer's own backlog.
            behind_max = max(behind_max, elapsed - sent / args.rate)
            xadd_range(r, sent, due - sent)
            sent = due
        send_s = time.monotonic() - start
        producer_us = (time.process_time() - producer_cpu0) / total * 1e6
        deadline = time.monotonic() + 120
        while not drained(group_info(r)) and time.monotonic() < deadline:
            check_alive(hosts)
            time.sleep(0.05)
        buckets = lag_buckets(hosts)
        insert_buckets = lag_buckets(hosts, "aurora_ingest_insert_seconds")
        batches = sum(h.metrics().total("aurora_ingest_batch_size_count") for h in hosts)
        lag_inserted = persisted(hosts)
        stop(hosts)
        n = int(buckets[-1][1]) if buckets else 0
        p50_ms = quantile(buckets, 0.5) * 1000 if n else None
        p99_ms = quantile(buckets, 0.99) * 1000 if n else None
        # Kept up: the achieved rate is within 2 % of the asked one and no
        # entry left more than 4 pacing periods late.
        kept_up = total / send_s >= 0.98 * args.rate and behind_max <= 4 * PACE_S + 0.01
        print(f"lag: {total} entries at {total / send_s:,.0f} msgs/s for {send_s:.1f} s; {n} stored; "
              f"persistence lag p50 {p50_ms or 0:.1f} ms, p99 {p99_ms or 0:.1f} ms "
              f"(interpolated in buckets {[b for b, _ in buckets[:-1]]} s)")
        ni = int(insert_buckets[-1][1]) if insert_buckets else 0
        insert_p50 = quantile(insert_buckets, 0.5) * 1000 if ni else None
        insert_p99 = quantile(insert_buckets, 0.99) * 1000 if ni else None
        print(f"  of which one insert_many: p50 {insert_p50 or 0:.1f} ms, p99 {insert_p99 or 0:.1f} ms over {ni} "
              f"inserts; {total / batches if batches else 0:.1f} entries per batch")
        print(f"  producer: {'kept up' if kept_up else 'DID NOT keep up'} with {args.rate:,.0f}/s "
              f"(at most {behind_max * 1000:.1f} ms behind schedule, {producer_us:.1f} us CPU per XADD)", flush=True)
        r.close()

    if args.json:
        obj = {
            "scenario": "ingest",
            "time_utc": started_utc,
            "params": {"processes": args.processes, "workers": args.workers, "batch": args.batch,
                       "backlog": args.backlog, "rate": _number(args.rate), "duration": _number(args.duration),
                       "secondary_indexes": args.secondary_indexes == "true", "search": args.search == "true",
                       "backend": args.backend,
                       "ferretdb_sqlite_pragmas": list(mongo_srv.sqlite_pragmas) if args.backend == "sqlite" else None,
                       "ferretdb_batch_size": mongo_srv.insert_batch_size},
            "results": {
                "persisted_per_s": round(args.backlog / dt, 1),
                "persisted_per_s_steady": round(steady, 1) if steady else None,
                "drain_s": round(dt, 3),
                "inserted": inserted,
                "cpu_us_per_message": per_msg_us,
                "lag_entries": total,
                "lag_send_rate_per_s": round(total / send_s, 1),
                "lag_send_s": round(send_s, 3),
                "lag_stored": n,
                "lag_inserted": lag_inserted,
                "lag_p50_ms": None if p50_ms is None else round(p50_ms, 2),
                "lag_p99_ms": None if p99_ms is None else round(p99_ms, 2),
                # The names run_bench.py parsed from the printed lines before --json.
                "persist_lag_p50_ms": None if p50_ms is None else round(p50_ms, 2),
                "persist_lag_p99_ms": None if p99_ms is None else round(p99_ms, 2),
                "lag_buckets": [[b if b != float("inf") else "+Inf", c] for b, c in buckets],
                "insert_p50_ms": None if insert_p50 is None else round(insert_p50, 2),
                "insert_p99_ms": None if insert_p99 is None else round(insert_p99, 2),
                "insert_buckets": [[b if b != float("inf") else "+Inf", c] for b, c in insert_buckets],
                "lag_entries_per_batch": round(total / batches, 1) if batches else None,
                "producer_kept_up": kept_up,
                "producer_max_behind_ms": round(behind_max * 1000, 2),
                "producer_cpu_us_per_xadd": round(producer_us, 2),
            },
            "command": command,
        }
        with open(args.json, "a") as f:
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
