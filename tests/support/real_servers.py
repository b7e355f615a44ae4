"""Real Redis and FerretDB servers for pytest (twin of real_servers.cpp).

Each server is a child process on a free loopback port with its data in a
fresh temporary folder. start() returns once the server answers (Redis PING,
MongoDB ping) or raises ServerStartError with the server's own log tail: a
test that needs a server fails, it never skips.

Clean-up, in three layers, as in the C++ fixture:
  - stop() sends SIGTERM, then SIGKILL after a deadline;
  - the child gets PR_SET_PDEATHSIG=SIGKILL, so it dies with pytest even when
    pytest is killed with SIGKILL;
  - every server is registered in $TMPDIR/aurora-test-servers/ (same format as
    the C++ fixture); the next start() kills servers whose owner died.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path

START_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.02
START_ATTEMPTS = 3  # a free port can be taken between probe and bind

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    pass


def _tmp_root() -> str:
    return os.environ.get("TMPDIR") or "/tmp"


def _registry_dir() -> Path:
    return Path(_tmp_root()) / "aurora-test-servers"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphaned_servers() -> int:
    """Kill registered servers whose owner process is gone. Returns the count."""
    killed = 0
    reg = _registry_dir()
    if not reg.is_dir():
        return 0
    for entry in reg.iterdir():
        try:
            server = int(entry.name)
            lines = entry.read_text().splitlines()
            owner = int(lines[0]) if lines else 0
            data_dir = lines[1] if len(lines) > 1 else ""
        except (ValueError, OSError):
            continue
        if _pid_alive(owner):
            continue
        try:
            exe = Path(Path(f"/proc/{server}/cmdline").read_bytes().split(b"\0")[0].decode()).name
        except OSError:
            exe = ""
        if exe in ("redis-server", "redis-sentinel", "ferretdb") and _pid_alive(server):
            os.kill(server, signal.SIGKILL)
            killed += 1
        if data_dir.startswith(_tmp_root() + "/aurora-"):
            shutil.rmtree(data_dir, ignore_errors=True)
        entry.unlink(missing_ok=True)
    return killed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # runs in the child between fork and exec
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)  # Ctrl-C in a terminal reaches pytest, which stops us


class ServerProcess:
    """A child process with stdout/stderr in a log file, registered for reaping.
    `user`: run as that user (PostgreSQL refuses to run as root)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, data_dir: Path, user: str | None = None):
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            # Popen switches the user before preexec_fn runs, so the parent-death
            # signal set there survives (a credential change would clear it).
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_child_setup, close_fds=True, user=user)
        _registry_dir().mkdir(parents=True, exist_ok=True)
        self.registry_entry = _registry_dir() / str(self.proc.pid)
        self.registry_entry.write_text(f"{os.getpid()}\n{data_dir}\n")

    def running(self) -> bool:
        if self.proc.poll() is None:
            return True
        self.registry_entry.unlink(missing_ok=True)
        return False

    def stop(self, grace_s: float = 5.0) -> None:
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.registry_entry.unlink(missing_ok=True)

    def log_tail(self, max_lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                lines = deque(f, maxlen=max_lines)
        except OSError as e:
            return f"    | (log unreadable: {e})\n"
        return "".join("    | " + line.rstrip("\n") + "\n" for line in lines) or "    | (empty log)\n"


def _wait_ready(proc: ServerProcess, what: str, probe) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if not proc.running():
            raise ServerStartError(f"{proc.name} exited before answering {what}; its log:\n{proc.log_tail()}")
        try:
            if probe():
                return
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = f"{type(e).__name__}: {e}"
        time.sleep(POLL_INTERVAL_S)  # polling readiness, bounded by the deadline
    raise ServerStartError(
        f"{proc.name} did not answer {what} within {START_DEADLINE_S:.0f} s "
        f"(last error: {last_error}); its log:\n{proc.log_tail()}")


class _Server:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = 0
        self.dir: Path | None = None
        self.proc: ServerProcess | None = None

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # Subclasses give NAME (also the data folder prefix) and _launch().
    NAME = "server"

    def _pick_port(self) -> int:
        return free_port()

    def _launch(self) -> None:
        raise NotImplementedError

    @classmethod
    def start(cls, **options):
        """A fresh server on a free port; retried when the port is taken
        between the probe and the bind. `options` go to the subclass's
        constructor (FerretDbServer's SQLite settings)."""
        reap_orphaned_servers()
        last = ""
        for _ in range(START_ATTEMPTS):
            s = cls(**options)
            s.dir = Path(tempfile.mkdtemp(prefix=f"aurora-{cls.NAME}-", dir=_tmp_root()))
            s.port = s._pick_port()
            try:
                s._launch()
                return s
            except ServerStartError as e:
                last = str(e)
                s.stop()
        raise ServerStartError(f"cannot start {cls.NAME}: {last}")

    def kill_process(self) -> None:
        """Stops the server process but keeps its port and data folder, so
        that restart() brings it back where clients expect it (outage tests)."""
        if self.proc:
            self.proc.stop()

    def restart(self) -> None:
        """Starts the server again on the same port and folder after
        kill_process(). Raises ServerStartError if the port was taken."""
        if self.proc and self.proc.running():
            raise RuntimeError("restart() needs kill_process() first")
        self._launch()


class RedisServer(_Server):
    """restart() gives an empty Redis (no persistence). `args`: more
    redis-server options, e.g. ("--replicaof", "127.0.0.1", "6390")."""

    NAME = "redis"

    def __init__(self, args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.args = tuple(args)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _pick_port(self) -> int:
        if "--cluster-enabled" not in self.args:
            return free_port()
        # A cluster node also listens on port + 10000 (its bus): both free,
        # and the port at most 55535.
        for _ in range(200):
            port = free_port()
            if port > 55535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((self.host, port + 10000))
                except OSError:
                    continue
            return port
        raise ServerStartError("no free port pair (port, port + 10000) for a cluster node")

    def _launch(self) -> None:
        import redis  # from the project venv

        argv = ["redis-server", "--port", str(self.port), "--bind", self.host, "--dir", str(self.dir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                "--replica-announce-ip", self.host, *self.args]
        self.proc = ServerProcess("redis-server", argv, self.dir / "redis.log", self.dir)

        def probe() -> bool:
            with redis.Redis(host=self.host, port=self.port, socket_timeout=0.3,
                             socket_connect_timeout=0.3) as r:
                return r.ping()

        _wait_ready(self.proc, "PING", probe)


class SentinelServer(_Server):
    """One Redis Sentinel watching master `MASTER_NAME` (quorum 2)."""

    NAME = "sentinel"
    MASTER_NAME = "aurora"

    def __init__(self, master_port: int = 0, down_after_ms: int = 1000, failover_timeout_ms: int = 5000) -> None:
        super().__init__()
        self.master_port = master_port
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _launch(self) -> None:
        import redis  # from the project venv

        conf = self.dir / "sentinel.conf"  # Sentinel rewrites it: the folder keeps it across restart()
        if not conf.exists():
            name = self.MASTER_NAME
            conf.write_text(
                f"port {self.port}\nbind {self.host}\ndir {self.dir}\nsentinel announce-ip {self.host}\n"
                f"sentinel monitor {name} {self.host} {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {name} 1\n")
        binary = shutil.which("redis-sentinel")
        argv = [binary, str(conf)] if binary else ["redis-server", str(conf), "--sentinel"]
        self.proc = ServerProcess("redis-sentinel", argv, self.dir / "sentinel.log", self.dir)

        def probe() -> bool:
            with redis.Redis(host=self.host, port=self.port, socket_timeout=0.3,
                             socket_connect_timeout=0.3) as r:
                return r.execute_command("SENTINEL", "get-master-addr-by-name", self.MASTER_NAME) is not None

        _wait_ready(self.proc, "SENTINEL get-master-addr-by-name", probe)


def _assembled(topology, build):
    """Runs build() (starting the topology's servers) and waits until the
    topology is healthy; on any failure stops what was started."""
    try:
        build()
        topology.wait_healthy()
    except BaseException:
        topology.stop()
        raise
    return topology


class SentinelTopology:
    """A master, `replicas` replicas and three Sentinels on loopback: what
    redis.mode "sentinel" is tested against (docs/scaling.md).

    start() returns once every replica is in sync and every Sentinel knows
    them and the other Sentinels, so that a failover can happen."""

    MASTER_NAME = SentinelServer.MASTER_NAME

    def __init__(self) -> None:
        self.master: RedisServer | None = None
        self.replicas: list[RedisServer] = []
        self.sentinels: list[SentinelServer] = []

    @classmethod
    def start(cls, replicas: int = 1, down_after_ms: int = 1000,
              failover_timeout_ms: int = 5000) -> "SentinelTopology":
        t = cls()

        def build() -> None:
            t.master = RedisServer.start()
            for _ in range(replicas):
                t.replicas.append(RedisServer.start(args=("--replicaof", t.master.host, str(t.master.port))))
            for _ in range(3):
                t.sentinels.append(SentinelServer.start(master_port=t.master.port, down_after_ms=down_after_ms,
                                                        failover_timeout_ms=failover_timeout_ms))

        return _assembled(t, build)

    @property
    def servers(self) -> list[RedisServer]:
        return [s for s in (self.master, *self.replicas) if s]

    @property
    def sentinel_addresses(self) -> list[str]:
        return [s.address for s in self.sentinels]

    def host_config(self) -> dict:
        """The host's "redis" section for this topology."""
        return {"url": "redis://127.0.0.1/0", "mode": "sentinel", "sentinels": self.sentinel_addresses,
                "master_name": self.MASTER_NAME}

    def ask(self, *command):
        """A command to the first Sentinel that answers."""
        import redis

        last: Exception | None = None
        for s in self.sentinels:
            if not s.proc or not s.proc.running():
                continue
            try:
                with redis.Redis(host=s.host, port=s.port, socket_timeout=1, decode_responses=True) as r:
                    return r.execute_command(*command)
            except redis.RedisError as e:
                last = e
        raise ServerStartError(f"no Sentinel answered {command}: {last}")

    def master_address(self) -> tuple[str, int]:
        host, port = self.ask("SENTINEL", "get-master-addr-by-name", self.MASTER_NAME)
        return host, int(port)

    def wait_healthy(self, deadline_s: float = START_DEADLINE_S) -> None:
        """Every Sentinel sees the master, every other running server as a
        replica in sync, and the two other Sentinels."""
        import redis

        deadline = time.monotonic() + deadline_s
        state = "no answer"
        while time.monotonic() < deadline:
            try:
                _, port = self.master_address()
                others = [s for s in self.servers if s.port != port and s.proc and s.proc.running()]
                links = []
                for o in others:
                    with redis.Redis(host=o.host, port=o.port, socket_timeout=1, decode_responses=True) as r:
                        links.append(r.info("replication").get("master_link_status"))
                counts = []
                for s in self.sentinels:
                    with redis.Redis(host=s.host, port=s.port, socket_timeout=1, decode_responses=True) as r:
                        m = r.execute_command("SENTINEL", "MASTER", self.MASTER_NAME)
                        info = dict(zip(m[::2], m[1::2])) if isinstance(m, list) else m
                        counts.append((int(info["num-slaves"]), int(info["num-other-sentinels"])))
                state = f"replica links {links}, sentinels (replicas, peers) {counts}"
                if all(link == "up" for link in links) and all(c == (len(others), 2) for c in counts):
                    return
            except (redis.RedisError, KeyError, ServerStartError) as e:
                state = f"{type(e).__name__}: {e}"
            time.sleep(POLL_INTERVAL_S * 5)  # polling the topology's own state, bounded by the deadline
        raise ServerStartError(f"the Sentinel topology did not settle within {deadline_s:.0f} s: {state}")

    def stop(self) -> None:
        for s in [*self.sentinels, *self.servers]:
            s.stop()


class ClusterTopology:
    """A Redis Cluster on loopback made by `redis-cli --cluster create`:
    `masters` masters with `replicas` replicas each (3 and 1: what Redis
    documents as the smallest cluster that fails over); or one master that
    serves every slot (`masters=1`, no replicas: the benchmark's baseline). start() returns once
    every node reports cluster_state:ok with all 16384 slots assigned and
    knows every other node, and every replica's link to its master is up."""

    NODE_TIMEOUT_MS = 1000  # failure detection; Redis's default is 15000

    def __init__(self) -> None:
        self.nodes: list[RedisServer] = []

    @classmethod
    def start(cls, masters: int = 3, replicas: int = 1) -> "ClusterTopology":
        t = cls()

        def build() -> None:
            for _ in range(masters * (1 + replicas)):
                # No replica migration: a test that stops a master's replicas
                # must not see another master's replica move over to it.
                t.nodes.append(RedisServer.start(args=(
                    "--cluster-enabled", "yes", "--cluster-node-timeout", str(cls.NODE_TIMEOUT_MS),
                    "--cluster-allow-replica-migration", "no")))
            if masters == 1:  # redis-cli --cluster create wants 3 masters: one node takes every slot
                if replicas:
                    raise ServerStartError("a one-master cluster is made without replicas here")
                n = t.nodes[0]
                out = subprocess.run(["redis-cli", "-h", n.host, "-p", str(n.port), "CLUSTER", "ADDSLOTSRANGE",
                                      "0", "16383"], capture_output=True, text=True, timeout=10,
                                     stdin=subprocess.DEVNULL)
            else:
                out = subprocess.run(
                    ["redis-cli", "--cluster", "create", *t.addresses, "--cluster-replicas", str(replicas),
                     "--cluster-yes"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            if out.returncode != 0 or "ERR" in out.stdout:
                raise ServerStartError(f"making the cluster failed:\n{out.stdout}{out.stderr}")

        return _assembled(t, build)

    @property
    def addresses(self) -> list[str]:
        return [f"{n.host}:{n.port}" for n in self.nodes]

    def running(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc and n.proc.running()]

    def wait_healthy(self, deadline_s: float = START_DEADLINE_S) -> None:
        import redis

        deadline = time.monotonic() + deadline_s
        state = "no answer"
        while time.monotonic() < deadline:
            try:
                live = self.running()
                infos, links = [], []
                for n in live:
                    with redis.Redis(host=n.host, port=n.port, socket_timeout=1, decode_responses=True) as r:
                        infos.append(r.execute_command("CLUSTER", "INFO"))
                        repl = r.info("replication")
                        if repl.get("role") == "slave":
                            links.append(repl.get("master_link_status"))
                parsed = [dict(line.split(":", 1) for line in i.splitlines() if ":" in line) for i in infos]
                state = str([(p.get("cluster_state"), p.get("cluster_slots_ok"), p.get("cluster_known_nodes"))
                             for p in parsed]) + f" replica links {links}"
                if all(p.get("cluster_state") == "ok" and p.get("cluster_slots_ok") == "16384"
                       and int(p.get("cluster_known_nodes", 0)) == len(self.nodes) for p in parsed) \
                        and all(link == "up" for link in links):
                    return
            except (redis.RedisError, ValueError) as e:
                state = f"{type(e).__name__}: {e}"
            time.sleep(POLL_INTERVAL_S * 5)  # polling the cluster's own state, bounded by the deadline
        raise ServerStartError(f"the cluster did not settle within {deadline_s:.0f} s: {state}")

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def ferretdb_binary() -> str:
    env = os.environ.get("AURORA_FERRETDB")
    if env:
        return env
    cached = REPO_ROOT / ".cache" / "bin" / "ferretdb"
    return str(cached) if cached.exists() else "ferretdb"


def postgres_bin(tool: str) -> str:
    """A PostgreSQL server program (Debian keeps them off PATH, in
    /usr/lib/postgresql/<major>/bin)."""
    found = shutil.which(tool)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / tool).exists():
            return str(d / tool)
    raise ServerStartError(f"{tool} not found: scripts/bootstrap.sh installs postgresql-15")


class PostgresServer(_Server):
    """PostgreSQL in a throwaway data folder, as FerretDB's second backend.
    fsync=off: a commit is in the OS's page cache, so it survives any process
    being killed but not an OS crash, as the SQLite fixtures
    (synchronous=NORMAL). wal_init_zero=off: a fresh server creates a WAL
    segment every 16 MB written and, by default, fills it with zeros first,
    which stalls every insert for ~40 ms each time (docs/ingest.md, Backends;
    a server that has run a while recycles its segments instead). Runs as the
    `postgres` user when started by root."""

    NAME = "postgres"

    def _launch(self) -> None:
        user = "postgres" if os.geteuid() == 0 else None
        data = self.dir / "data"
        if not data.exists():
            data.mkdir()
            if user:
                shutil.chown(self.dir, user)
                shutil.chown(data, user)
            init = subprocess.run([postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                   "-E", "UTF8", "--no-sync", "--locale=C"],
                                  capture_output=True, text=True, user=user, timeout=120)
            if init.returncode != 0:
                raise ServerStartError(f"initdb failed: {init.stdout}{init.stderr}")
        argv = [postgres_bin("postgres"), "-D", str(data), "-h", self.host, "-p", str(self.port), "-k", str(self.dir),
                "-c", "fsync=off", "-c", "wal_init_zero=off", "-c", "max_connections=200", "-c", "shared_buffers=256MB"]
        self.proc = ServerProcess("postgres", argv, self.dir / "postgres.log", self.dir, user=user)

        def probe() -> bool:
            return subprocess.run([postgres_bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                                  timeout=5).returncode == 0

        _wait_ready(self.proc, "pg_isready", probe)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM (ServerProcess.stop)
        # would wait for every client, FerretDB's pool included, to leave.
        if self.proc and self.proc.running():
            self.proc.proc.send_signal(signal.SIGINT)
            try:
                self.proc.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass  # ServerProcess.stop kills it
        super().stop()

    def create_database(self, name: str) -> str:
        """A new database; returns the URL FerretDB takes."""
        subprocess.run([postgres_bin("createdb"), "-h", self.host, "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True, timeout=30)
        return f"postgres://postgres@{self.host}:{self.port}/{name}"


# How the fixtures run FerretDB 1.24's SQLite backend (docs/ingest.md,
# Performance, has the measurements):
# - WAL is FerretDB's default; synchronous=NORMAL syncs the WAL at
#   checkpoints instead of at every commit. A commit survives FerretDB or any
#   other process being killed (it is in the OS's page cache); only an OS
#   crash or power loss can lose the last commits before a checkpoint, and the
#   database stays consistent. Throwaway test data needs no more.
# - --test-batch-size: documents per SQLite transaction (FerretDB's default
#   100). At or above the ingest plugin's `batch`, one insert_many is one
#   transaction and one commit instead of batch/100 of them.
FERRETDB_SQLITE_PRAGMAS = ("synchronous(normal)",)
FERRETDB_INSERT_BATCH_SIZE = 1000


class FerretDbServer(_Server):
    """restart() keeps the data (SQLite files in the folder) and the settings.

    sqlite_pragmas: SQLite pragmas for every connection, e.g.
    ("synchronous(full)",) (FerretDB adds busy_timeout, journal_mode(wal) and
    auto_vacuum(none) unless given); insert_batch_size: FerretDB's
    --test-batch-size. Both default to the fixtures' settings above."""

    NAME = "ferretdb"

    def __init__(self, sqlite_pragmas: tuple[str, ...] | None = None, insert_batch_size: int | None = None,
                 postgresql_url: str | None = None) -> None:
        """postgresql_url: the PostgreSQL backend on that database instead of
        SQLite (PostgresServer.create_database)."""
        super().__init__()
        self.postgresql_url = postgresql_url
        self.backend = "postgresql" if postgresql_url else "sqlite"
        self.sqlite_pragmas = tuple(FERRETDB_SQLITE_PRAGMAS if sqlite_pragmas is None else sqlite_pragmas)
        self.insert_batch_size = FERRETDB_INSERT_BATCH_SIZE if insert_batch_size is None else insert_batch_size

    def url(self, database: str = "aurorachat") -> str:
        return f"mongodb://{self.host}:{self.port}/{database}"

    def sqlite_url(self) -> str:
        query = "&".join(f"_pragma={p}" for p in self.sqlite_pragmas)
        return f"file:{self.dir}/" + (f"?{query}" if query else "")

    def _launch(self) -> None:
        import pymongo  # from the project venv

        store = (["--handler=postgresql", f"--postgresql-url={self.postgresql_url}"] if self.postgresql_url else
                 ["--handler=sqlite", f"--sqlite-url={self.sqlite_url()}"])
        argv = [ferretdb_binary(), *store, f"--state-dir={self.dir}",
                f"--listen-addr={self.host}:{self.port}", "--debug-addr=-", "--telemetry=disable",
                "--log-level=warn", f"--test-batch-size={self.insert_batch_size}"]
        self.proc = ServerProcess("ferretdb", argv, self.dir / "ferretdb.log", self.dir)

        def probe() -> bool:
            with pymongo.MongoClient(self.url("admin"), serverSelectionTimeoutMS=300,
                                     connectTimeoutMS=300) as c:
                return c.admin.command("ping").get("ok") == 1.0

        _wait_ready(self.proc, "ping", probe)
