"""Runs one benchmark against real services and records its result.

Starts a real Redis and R aurora-host replicas (probe + chat plugins, on free
loopback ports), runs aurora-bench against them with the arguments after
`--`, appends the result to a results file, and stops everything by PID.

    .cache/venv/bin/python tests/bench/run_bench.py --replicas 2 -- \\
        --scenario fanout --subscribers 1000 --publishers 10 --rate 50 --duration 10
    .cache/venv/bin/python tests/bench/run_bench.py --replicas 2 --sweep 25,50,100,200,300,400,500 \\
        --plot docs/images/fanout-sweep.png -- --subscribers 1000 --publishers 10 --duration 5
    .cache/venv/bin/python tests/bench/run_bench.py -- --scenario ingest --processes 1 --workers 2 \\
        --batch 50 --backlog 50000 --rate 2000 --duration 20

The same generator against Centrifugo v6 (a peer to compare with, not a
dependency: built into .cache/centrifugo by this script with `go install`
the first time; Redis engine, token auth, clients allowed to publish to the
channels they subscribe to):

    .cache/venv/bin/python tests/bench/run_bench.py --peer centrifugo --replicas 1 -- \\
        --scenario rooms --connections 5000 --rooms 1000 --rate 1000 --duration 5

Scenarios fanout, rooms, connect and idle are aurora-bench's (see the top of
tests/bench/aurora_bench.cpp); the replicas' ports, --json and --git-rev are
appended to its arguments. `--scenario ingest` runs tests/bench/ingest_bench.py
with the other arguments instead (it starts its own Redis, FerretDB and
ingest-only hosts: --replicas and --profile do not apply).

Results: aurora-bench writes one JSON object per run to a temporary file;
this script adds "runner" (its own command line, replicas, profile) and, for
a sweep, "sweep_id" and "sweep_p99_limit_ms" shared by the sweep's runs, and
appends the object as one line to --results (default
.cache/bench/results.jsonl). The ingest run gets the same shape (see
run_ingest). tests/bench/plot_bench.py draws a results file.

Host config: identity comes from the probe fixture plugin (?user=), so no
auth plugin is in the path being measured. The ratelimit plugin is not
loaded, so no rate limit applies to the generator; a bench config that adds
it must raise its limits (room_max, user_max, control_max and connect_max at
0 turn each off, plugins/ratelimit/README.md).

Stopping: on exit, Ctrl-C (SIGINT) or SIGTERM, every replica and Redis is
stopped by PID (SIGTERM, then SIGKILL); then any child process still running
is killed by PID and named on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))

from aurora_host import AuroraHost, build_dir, deep_merge  # noqa: E402
from real_servers import FerretDbServer, RedisServer, free_port  # noqa: E402

DEFAULT_RESULTS = REPO_ROOT / ".cache" / "bench" / "results.jsonl"
READY_DEADLINE_S = 10.0
# The auth profile's HS256 secret (loopback only; aurora-bench mints with it).
BENCH_SECRET = "aurora-bench-only-" + "8f3b2c1d9e7a6f5b4c3d2e1f0a9b8c7d"
CENTRIFUGO_VERSION = "v6.9.1"
CENTRIFUGO_DIR = REPO_ROOT / ".cache" / "centrifugo"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--profile", choices=["chat", "echo", "auth"], default="chat",
                    help="chat: probe + chat plugins (the real message path); echo: the host alone with echo")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                    help="append one JSON object per run to this file (default: %(default)s)")
    ap.add_argument("--sweep", help="comma-separated message rates: run the fanout scenario at each "
                    "(with the other bench arguments) and report the highest with no loss and p99 under --p99-ms")
    ap.add_argument("--p99-ms", type=float, default=50.0)
    ap.add_argument("--host-config", type=json.loads, default={},
                    help='JSON merged into every replica\'s config, e.g. \'{"compression": {"enabled": false}}\'')
    ap.add_argument("--plot", type=Path, help="with --sweep: draw the sweep into this PNG (tests/bench/plot_bench.py)")
    ap.add_argument("--peer", choices=["aurora", "centrifugo"], default="aurora",
                    help="the server to measure: aurora (the replicas above) or Centrifugo " + CENTRIFUGO_VERSION +
                    " with its Redis engine (--replicas nodes)")
    ap.add_argument("--redis-replicas", type=int, default=0,
                    help="Redis replicas of the master, in sync before the run (the cost of chat's wait_replicas)")
    ap.add_argument("--chat-config", type=json.loads, default={},
                    help='JSON merged into the chat plugin\'s config, e.g. \'{"wait_replicas": 1}\'')
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    bench = [a for a in args.bench_args if a != "--"]
    if args.plot and not args.sweep:
        ap.error("--plot needs --sweep")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    runner = {"command": shlex.join([".cache/venv/bin/python", "tests/bench/run_bench.py", *sys.argv[1:]])}
    try:
        if scenario_of(bench) == "ingest":
            if args.sweep:
                ap.error("--sweep runs the fanout scenario; it does not apply to ingest")
            return run_ingest(bench, args.results, runner)
        runner |= {"replicas": args.replicas, "profile": args.profile, "peer": args.peer,
                   "redis_replicas": args.redis_replicas, "chat_config": args.chat_config}
        peer = centrifugo_services(args.replicas) if args.peer == "centrifugo" else \
            services(args.replicas, args.profile, args.host_config, args.redis_replicas, args.chat_config)
        with peer as (ports, pids), tempfile.TemporaryDirectory(prefix="aurora-bench-json-") as tmp:
            cmd = [str(build_dir() / "tests/bench/aurora-bench"), *bench, "--ports", ports,
                   "--git-rev", git_revision()]
            if args.profile == "auth":
                cmd += ["--auth", "token", "--secret", BENCH_SECRET]
            if args.peer == "centrifugo":
                cmd += ["--peer", "centrifugo", "--secret", BENCH_SECRET, "--pids", pids]
            if not args.sweep:
                rc, obj = run_aurora_bench(cmd, Path(tmp) / "run.json")
                if obj is not None:
                    append_result(args.results, obj | {"runner": runner})
                    print(f"results: appended to {args.results}")
                return rc
            rates = [float(r) for r in args.sweep.split(",")]
            sweep_id = sweep(cmd, rates, args.p99_ms, Path(tmp), args.results, runner)
        if sweep_id is None:
            return 1
        if args.plot:
            return subprocess.run([sys.executable, str(HERE / "plot_bench.py"), "--results", str(args.results),
                                   "--out", str(args.plot), "--sweep-id", sweep_id]).returncode
        return 0
    except KeyboardInterrupt:
        print("run_bench: interrupted", file=sys.stderr)
        return 130


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signal.SIGTERM)  # unwinds through the finally blocks that stop the services


def scenario_of(bench_args: list[str]) -> str:
    """The last --scenario in aurora-bench's arguments (its parser lets a later one win)."""
    scenario = "fanout"
    for i, a in enumerate(bench_args[:-1]):
        if a == "--scenario":
            scenario = bench_args[i + 1]
    return scenario


# ---- the services ------------------------------------------------------------

def raise_open_files(want: int = 262144) -> None:
    """Replicas inherit this process's descriptor limit (and raise their soft
    limit to the hard one): raise it, hard limit included when allowed (root),
    so that idle runs of 50,000 connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((max(soft, want), max(hard, want)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return
        except (ValueError, OSError):
            continue


def host_config(profile: str, redis_url: str, mongo_url: str = "") -> dict:
    b = build_dir()
    if profile == "echo":
        return {"log": {"level": "warn", "format": "json"}, "allow_anonymous": True,
                "plugins": [{"name": "echo", "path": str(b / "plugins/echo.so")}]}
    if profile == "auth":
        # The chat-service handshake: a JWT verified by the auth plugin (and
        # its per-user connection entry in Redis), then chat's automatic join.
        # aurora-bench gets --auth token --secret BENCH_SECRET.
        return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url},
                "jwt": {"secret": BENCH_SECRET}, "mongo": {"url": mongo_url},
                "limits": {"send_queue_max_frames": 65536, "send_queue_max_bytes": 64 << 20},
                "plugins": [{"name": "auth", "path": str(b / "plugins/auth.so")},
                            {"name": "chat", "path": str(b / "plugins/chat.so"),
                             "config": {"presence_events": False}}]}
    return {"log": {"level": "warn", "format": "json"}, "redis": {"url": redis_url},
            "limits": {"send_queue_max_frames": 65536, "send_queue_max_bytes": 64 << 20},
            "plugins": [{"name": "probe", "path": str(b / "tests/host/api/probe.so")},
                        {"name": "chat", "path": str(b / "plugins/chat.so"),
                         # join/leave events would add N frames per connect (O(N^2) to set up)
                         "config": {"presence_events": False}}]}


def wait_redis_replicas(master: RedisServer, n: int) -> None:
    import redis as redis_py

    deadline = time.monotonic() + READY_DEADLINE_S
    with redis_py.Redis(host=master.host, port=master.port, decode_responses=True) as r:
        while True:
            info = r.info("replication")
            online = [info[k] for k in info if k.startswith("slave") and isinstance(info[k], dict)
                      and info[k].get("state") == "online"]
            if len(online) == n:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{n} Redis replicas not in sync within {READY_DEADLINE_S:.0f} s: {info}")
            time.sleep(0.05)  # replication readiness poll, bounded


@contextlib.contextmanager
def services(replicas: int, profile: str, extra_config: dict | None = None, redis_replicas: int = 0,
             chat_config: dict | None = None):
    """Redis (and its replicas) and the Aurora replicas, ready; yields their
    ports ("p1,p2"). Stops them by PID on the way out, whatever raised, and
    removes their folders (a replica that fails to start shows its log tail
    in the error)."""
    redis: RedisServer | None = None
    redis_copies: list[RedisServer] = []
    ferret: FerretDbServer | None = None
    hosts: list[AuroraHost] = []
    workdir = Path(tempfile.mkdtemp(prefix="aurora-bench-"))
    try:
        raise_open_files()
        redis = RedisServer.start()
        for _ in range(redis_replicas):
            redis_copies.append(RedisServer.start(args=("--replicaof", redis.host, str(redis.port))))
        if redis_replicas:
            wait_redis_replicas(redis, redis_replicas)
        if profile == "auth":  # the auth plugin is ready once its user indexes exist
            ferret = FerretDbServer.start()
        cfg = deep_merge(host_config(profile, redis.url, ferret.url() if ferret else ""), extra_config or {})
        for p in cfg.get("plugins", []):
            if p["name"] == "chat":
                p["config"] = {**p.get("config", {}), **(chat_config or {})}
        for i in range(replicas):
            h = AuroraHost.start(build_dir() / "host/aurora-host", workdir / f"replica{i}", cfg)
            hosts.append(h)
            deadline = time.monotonic() + READY_DEADLINE_S
            while h.get("/ready").status != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"replica {i} not ready within {READY_DEADLINE_S:.0f} s:\n{h.stderr_tail()}")
                time.sleep(0.05)  # readiness poll, bounded
        print(f"run_bench: redis-server pid {redis.proc.proc.pid}, aurora-host pids "
              f"{', '.join(str(h.pid) for h in hosts)}", file=sys.stderr, flush=True)
        yield ",".join(str(h.port) for h in hosts), ",".join(str(h.pid) for h in hosts)
    finally:
        for h in hosts:
            h.stop()
        for c in redis_copies:
            c.stop()
        if redis is not None:
            redis.stop()
        if ferret is not None:
            ferret.stop()
        kill_leftover_children()
        shutil.rmtree(workdir, ignore_errors=True)


def centrifugo_binary() -> Path:
    """.cache/centrifugo/bin/centrifugo, built from the Go module proxy the
    first time (a few minutes on 2 cores)."""
    binary = CENTRIFUGO_DIR / "bin" / "centrifugo"
    if binary.exists():
        return binary
    print(f"run_bench: building Centrifugo {CENTRIFUGO_VERSION} into {binary.parent} (go install)", file=sys.stderr)
    env = dict(os.environ, GOBIN=str(binary.parent), GOFLAGS="-mod=mod")
    subprocess.run(["go", "install", f"github.com/centrifugal/centrifugo/v6@{CENTRIFUGO_VERSION}"], env=env,
                   check=True, timeout=1800)
    return binary


def centrifugo_config(redis_url: str, port: int) -> dict:
    """Centrifugo v6: Redis engine (its Pub/Sub between nodes, as Aurora's),
    HS256 connection tokens, clients may publish to the channels they are
    subscribed to (Aurora's rooms); no history, no recovery, no presence
    (Aurora's bench profile has chat's presence events off too)."""
    return {"log": {"level": "error"},
            "http_server": {"address": "127.0.0.1", "port": port},
            "health": {"enabled": True},
            "client": {"token": {"hmac_secret_key": BENCH_SECRET}, "allowed_origins": ["*"]},
            "channel": {"without_namespace": {"allow_subscribe_for_client": True,
                                              "allow_publish_for_subscriber": True}},
            "engine": {"type": "redis", "redis": {"address": [redis_url]}}}


@contextlib.contextmanager
def centrifugo_services(nodes: int):
    """Redis and `nodes` Centrifugo processes, ready (/health 200); yields
    (ports, pids) as aurora-bench wants them. Stopped by PID on the way out."""
    binary = centrifugo_binary()
    redis: RedisServer | None = None
    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="aurora-bench-centrifugo-"))
    try:
        raise_open_files()
        redis = RedisServer.start()
        ports = []
        for i in range(nodes):
            port = free_port()
            cfg = workdir / f"node{i}.json"
            cfg.write_text(json.dumps(centrifugo_config(redis.url, port)))
            log = open(workdir / f"node{i}.log", "wb")
            procs.append(subprocess.Popen([str(binary), "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                          cwd=workdir))
            ports.append(port)
            deadline = time.monotonic() + READY_DEADLINE_S
            while not http_ok(port, "/health"):
                if time.monotonic() > deadline or procs[-1].poll() is not None:
                    raise SystemExit(f"centrifugo node {i} not ready within {READY_DEADLINE_S:.0f} s:\n"
                                     + (workdir / f"node{i}.log").read_text()[-2000:])
                time.sleep(0.05)  # readiness poll, bounded
        print(f"run_bench: redis-server pid {redis.proc.proc.pid}, centrifugo pids "
              f"{', '.join(str(p.pid) for p in procs)}", file=sys.stderr, flush=True)
        yield ",".join(map(str, ports)), ",".join(str(p.pid) for p in procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if redis is not None:
            redis.stop()
        kill_leftover_children()
        shutil.rmtree(workdir, ignore_errors=True)


def http_ok(port: int, path: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def children_of(pid: int) -> dict[int, str]:
    """pid -> name of the running (not zombie) children of pid (also used by
    tests/bench/test_bench_smoke.py)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        close = stat.rfind(")")
        state, ppid = stat[close + 2:].split()[:2]
        if int(ppid) == pid and state != "Z":
            out[int(d.name)] = stat[stat.find("(") + 1:close]
    return out


def children() -> list[tuple[int, str]]:
    """(pid, name) of this process's running children."""
    return list(children_of(os.getpid()).items())


def kill_leftover_children() -> None:
    """The check after stopping: a child still running (started when an
    interrupt came between its start and its registration) is killed by PID."""
    for pid, name in children():
        print(f"run_bench: killing leftover child {name} (pid {pid})", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    left = children()
    if left:
        print(f"run_bench: still running after SIGKILL: {left}", file=sys.stderr)


# ---- one run, one result -------------------------------------------------------

def git_revision() -> str:
    """$AURORA_GIT_REV, else `git rev-parse --short HEAD` plus "-dirty" when
    tracked files have changes, of the work tree that holds the build being
    measured (AURORA_BUILD_DIR may be another checkout's, e.g. an older
    revision in a `git worktree`); "unknown" outside a work tree."""
    if os.environ.get("AURORA_GIT_REV"):
        return os.environ["AURORA_GIT_REV"]
    tree = build_dir() if build_dir().exists() else REPO_ROOT
    git = ["git", "-C", str(tree), "--no-optional-locks"]
    try:
        rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "") if rev else "unknown"


def run_aurora_bench(cmd: list[str], json_path: Path) -> tuple[int, dict | None]:
    """Runs aurora-bench (its human-readable output goes to our stdout) and
    returns its exit status and the JSON object it wrote, or None."""
    json_path.unlink(missing_ok=True)
    sys.stdout.flush()
    rc = subprocess.run([*cmd, "--json", str(json_path)]).returncode
    lines = json_path.read_text().splitlines() if json_path.exists() else []
    if len(lines) != 1:
        print(f"run_bench: aurora-bench exited {rc} and wrote {len(lines)} result lines (want 1)", file=sys.stderr)
        return (rc or 1), None
    return rc, json.loads(lines[0])


def append_result(results: Path, obj: dict) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, separators=(",", ":")) + "\n")


def sweep(cmd: list[str], rates: list[float], p99_limit: float, tmp: Path, results: Path,
          runner: dict) -> str | None:
    """Fanout at each message rate; prints one row per rate and the best;
    returns the sweep id (None when no rate gave a result)."""
    sweep_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    rows = []
    print(f"sweep {sweep_id}: {' '.join(cmd)} --rate R   (R in {rates})")
    for rate in rates:
        rc, obj = run_aurora_bench([*cmd, "--scenario", "fanout", "--rate", f"{rate:g}"], tmp / "sweep.json")
        if obj is None:
            print(f"{rate:>8.0f}  (no result: aurora-bench exited {rc})")
            continue
        append_result(results, obj | {"runner": runner, "sweep_id": sweep_id, "sweep_p99_limit_ms": p99_limit})
        rows.append(obj)
    print(f"{'msg/s':>8} {'deliveries/s':>13} {'lost':>8} {'p50 ms':>8} {'p99 ms':>8} {'us/deliv':>9}")
    for o in rows:
        r = o["results"]
        print(f"{o['params']['rate']:>8.0f} {r['deliveries_per_s']:>13.0f} {r['lost']:>8} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['host_cpu_us_per_delivery']:>9.2f}")
    ok = [o["results"] for o in rows if o["results"]["lost"] == 0 and o["results"]["p99_ms"] <= p99_limit]
    if ok:
        best = max(ok, key=lambda r: r["deliveries_per_s"])
        print(f"highest with no loss and p99 <= {p99_limit:g} ms: {best['deliveries_per_s']:.0f} deliveries/s "
              f"(p99 {best['p99_ms']:.2f} ms, {best['host_cpu_us_per_delivery']:.2f} us host CPU per delivery)")
    else:
        print(f"no rate met no loss and p99 <= {p99_limit:g} ms")
    print(f"results: {len(rows)} runs appended to {results} (sweep_id {sweep_id})")
    return sweep_id if rows else None


# ---- ingest ---------------------------------------------------------------------

def machine() -> dict:
    """The "machine" object aurora-bench writes, from Python."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    u = platform.uname()
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model,
            "kernel": f"{u.system} {u.release} {u.machine}", "mem_total_kb": mem_kb}


# ingest_bench.py's two result lines, one number per pattern, so that a
# reworded line fails loudly with the name of what is missing.
_INGEST_NUMBERS = {
    "backlog": r"throughput: (\d+) entries drained",
    "drain_s": r"drained in ([\d.]+) s",
    "persisted_per_s": r"-> ([\d,.]+) msgs/s persisted",
    "inserted": r"\((\d+) inserted",
    "processes": r"(\d+) process\(es\)",
    "workers": r"(\d+) worker\(s\)",
    "batch": r", batch (\d+)",
    "lag_entries": r"lag: (\d+) entries",
    "lag_send_rate_per_s": r"entries at ([\d,.]+) msgs/s",
    "lag_send_s": r"msgs/s for ([\d.]+) s;",
    "lag_stored": r"(\d+) stored",
    "persist_lag_p50_ms": r"persistence lag p50 ([\d.]+) ms",
    "persist_lag_p99_ms": r"persistence lag p50 .*?p99 ([\d.]+) ms",
}
_INGEST_SETUP = ("processes", "workers", "batch")  # params, not results


def parse_ingest_output(text: str) -> dict:
    """ingest_bench.py's printed numbers -> {name: number}; raises ValueError
    naming what is missing."""
    out, missing = {}, []
    for name, pattern in _INGEST_NUMBERS.items():
        m = re.search(pattern, text)
        if not m:
            missing.append(name)
            continue
        v = float(m.group(1).replace(",", ""))
        out[name] = int(v) if v.is_integer() and "." not in m.group(1) else v
    if missing:
        raise ValueError(f"ingest_bench.py output lacks {', '.join(missing)}; its output ends:\n{text[-600:]}")
    return out


def given_options(args: list[str]) -> dict:
    """--name value pairs as given (numbers where they parse)."""
    out: dict = {}
    for i, a in enumerate(args):
        if a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            v: object = args[i + 1]
            with contextlib.suppress(ValueError):
                v = float(args[i + 1])
                v = int(v) if v.is_integer() else v
            out[a[2:].replace("-", "_")] = v
    return out


def run_ingest(bench_args: list[str], results: Path, runner: dict) -> int:
    """Runs tests/bench/ingest_bench.py and records one object in
    aurora-bench's shape: params, machine, git_revision, command, results
    (persisted messages/s from the backlog drain, persistence lag p50/p99 at
    the steady rate) and latency_cdf ([]: ingest_bench.py prints percentiles,
    not its lag histogram). If ingest_bench.py has a --json option, its object
    is used, and whatever it lacks of that shape is filled in here."""
    args = [a for i, a in enumerate(bench_args)
            if a != "--scenario" and not (i > 0 and bench_args[i - 1] == "--scenario")]
    cmd = [sys.executable, str(HERE / "ingest_bench.py"), *args]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="aurora-ingest-json-") as tmp:
        json_path = Path(tmp) / "run.json"
        has_json = "--json" in subprocess.run([*cmd[:2], "--help"], capture_output=True, text=True).stdout
        rc, text = _run_teed([*cmd, "--json", str(json_path)] if has_json else cmd)
        if has_json and json_path.exists() and json_path.read_text().strip():
            obj = json.loads(json_path.read_text().splitlines()[0])
        else:
            try:
                numbers = parse_ingest_output(text)
            except ValueError as e:
                print(f"run_bench: ingest_bench.py exited {rc}; {e}", file=sys.stderr)
                return rc or 1
            obj = {"params": given_options(args) | {k: numbers[k] for k in (*_INGEST_SETUP, "backlog")},
                   "results": {k: v for k, v in numbers.items() if k not in _INGEST_SETUP}}
    obj = {"scenario": "ingest", "time_utc": started, "machine": machine(), "git_revision": git_revision(),
           "command": shlex.join(cmd), "latency_cdf": [], "exit_status": rc} | obj | {"runner": runner}
    obj["params"] = {"scenario": "ingest"} | obj.get("params", {})
    append_result(results, obj)
    print(f"results: appended to {results}")
    return rc


def _run_teed(cmd: list[str]) -> tuple[int, str]:
    """Runs cmd, copying its stdout to ours as it comes; returns (exit status, stdout)."""
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        return proc.wait(), "".join(lines)
    finally:
        if proc.poll() is None:  # interrupted: let it stop its servers, then make sure
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        kill_leftover_children()


if __name__ == "__main__":
    sys.exit(main())
