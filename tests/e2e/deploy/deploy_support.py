"""The compose topology as plain processes on loopback (tests/e2e/deploy).

- ProfileHost: aurora-host started from a shipped profile
  (samples/config/<profile>.json, the files `cmake --install` puts in
  share/aurora/config) with the AURORA_* environment overrides compose.yaml
  uses, only the addresses changed: AURORA_HOST/AURORA_PORT on loopback.
- Nginx: Debian's nginx as a child process (`-c <tmp conf> -p <tmp prefix>`),
  running samples/deploy/nginx/aurora.conf -- the file compose.yaml mounts --
  with its upstream addresses (`name:8080`) and its listen port replaced by
  loopback ones. render_nginx_conf() checks that nothing else changed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))

from aurora_host import build_dir, http_request, parse_metrics, tail  # noqa: E402
from real_servers import _child_setup, free_port  # noqa: E402

NGINX_CONF = REPO_ROOT / "samples" / "deploy" / "nginx" / "aurora.conf"
PROFILES = REPO_ROOT / "samples" / "config"
WEB = REPO_ROOT / "samples" / "web"
START_DEADLINE_S = 30.0


class StartError(RuntimeError):
    pass


def _wait_http(port: int, path: str, proc: subprocess.Popen, log: Path, what: str,
               deadline_s: float = START_DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"{what} exited with code {proc.returncode} before GET {path} answered 200; "
                             f"log tail:\n{tail(log)}")
        try:
            status = http_request(port, path, timeout=1.0).status
            if status == 200:
                return
            last = f"status {status}"
        except OSError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.05)  # polling readiness, bounded by the deadline
    raise StartError(f"{what}: GET {path} did not answer 200 within {deadline_s:.0f} s (last: {last}); "
                     f"log tail:\n{tail(log)}")


class ProfileHost:
    """One aurora-host running a shipped profile, configured by environment."""

    def __init__(self, name: str, profile: str, workdir: Path, env: dict[str, str]):
        self.name = name
        self.profile = profile
        self.workdir = workdir
        self.env = env
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"{name}.stderr"

    @classmethod
    def start(cls, name: str, profile: str, workdir: Path, env: dict[str, str]) -> "ProfileHost":
        config = PROFILES / f"{profile}.json"
        if not config.is_file():
            raise StartError(f"profile {config} does not exist")
        last = ""
        for attempt in range(3):  # a free port can be taken between probe and bind
            h = cls(name, profile, workdir, env)
            h.port = free_port()
            full_env = {k: v for k, v in os.environ.items() if not k.startswith("AURORA_")}
            full_env.update(env)
            full_env.update({"AURORA_HOST": "127.0.0.1", "AURORA_PORT": str(h.port)})
            binary = build_dir() / "host" / "aurora-host"
            with open(h.log, "ab") as err:
                h.proc = subprocess.Popen([str(binary), "--config", str(config)], stdin=subprocess.DEVNULL,
                                          stdout=err, stderr=err, env=full_env, cwd=workdir,
                                          preexec_fn=_child_setup, close_fds=True)
            try:
                _wait_http(h.port, "/health", h.proc, h.log, f"{name} ({profile})")
                return h
            except StartError as e:
                last = str(e)
                h.kill()
                if h.proc.returncode != 1:  # 1 = e.g. the port was taken: retry; 2 = config
                    break
        raise StartError(last)

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> None:
        _wait_http(self.port, "/ready", self.proc, self.log, f"{self.name} ({self.profile})", deadline_s)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self):
        resp = http_request(self.port, "/metrics")
        assert resp.status == 200, f"{self.name}: GET /metrics -> {resp.status}"
        return parse_metrics(resp.body.decode())

    def kill(self) -> None:
        """SIGKILL, the crash of the test."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, deadline_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after the deadline; the exit code (None if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


_UPSTREAM_SERVER = re.compile(r"^(\s*server\s+)([a-z][a-z0-9-]*):8080(\b.*;)\s*$")
_LISTEN = re.compile(r"^(\s*listen\s+)8080;\s*$")


def render_nginx_conf(upstreams: dict[str, list[int]], listen_port: int) -> str:
    """aurora.conf with `server <name>:8080 ...;` expanded into one line per
    loopback port of that service (what Docker's DNS does with a service
    name: one address per replica) and `listen 8080;` moved to loopback.
    Every other line is kept byte for byte (asserted)."""
    original = NGINX_CONF.read_text().splitlines()
    out, seen = [], set()
    for line in original:
        m = _UPSTREAM_SERVER.match(line)
        if m:
            name = m.group(2)
            if name not in upstreams:
                raise AssertionError(f"aurora.conf names upstream '{name}' that the test does not run")
            seen.add(name)
            out.extend(f"{m.group(1)}127.0.0.1:{port}{m.group(3)}" for port in upstreams[name])
            continue
        m = _LISTEN.match(line)
        if m:
            seen.add("listen")
            out.append(f"{m.group(1)}127.0.0.1:{listen_port};")
            continue
        out.append(line)
    missing = (set(upstreams) | {"listen"}) - seen
    assert not missing, f"aurora.conf has no line for {sorted(missing)}: the template and the test disagree"
    # Only address lines differ from the file compose mounts.
    kept = [ln for ln in out if "127.0.0.1:" not in ln]
    assert kept == [ln for ln in original if not (_UPSTREAM_SERVER.match(ln) or _LISTEN.match(ln))]
    return "\n".join(out) + "\n"


class Nginx:
    """Debian's nginx in the foreground with its own prefix, conf and logs."""

    def __init__(self, prefix: Path, port: int, proc: subprocess.Popen):
        self.prefix = prefix
        self.port = port
        self.proc = proc
        self.error_log = prefix / "logs" / "error.log"

    @classmethod
    def start(cls, prefix: Path, upstreams: dict[str, list[int]]) -> "Nginx":
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise StartError("nginx is not installed: run scripts/bootstrap.sh (Debian package nginx)")
        last = ""
        for _ in range(3):
            port = free_port()
            for d in ("logs", "conf.d", "temp/body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"):
                (prefix / d).mkdir(parents=True, exist_ok=True)
            (prefix / "conf.d" / "aurora.conf").write_text(render_nginx_conf(upstreams, port))
            web = prefix / "aurora-web"  # `root aurora-web;` is relative to the prefix
            if not web.exists():
                web.symlink_to(WEB)
            # The scaffolding the nginx image gives the mounted file: an http
            # context with mime types. Workers run as root only because the
            # test's temporary folders are private to the test's user.
            user = "user root root;\n" if os.geteuid() == 0 else ""
            (prefix / "nginx.conf").write_text(
                f"{user}worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\n"
                f"error_log {prefix}/logs/error.log info;\n"
                "events { worker_connections 4096; }\n"
                "http {\n"
                "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
                f"    access_log {prefix}/logs/access.log;\n"
                f"    client_body_temp_path {prefix}/temp/body;\n    proxy_temp_path {prefix}/temp/proxy;\n"
                f"    fastcgi_temp_path {prefix}/temp/fastcgi;\n    uwsgi_temp_path {prefix}/temp/uwsgi;\n"
                f"    scgi_temp_path {prefix}/temp/scgi;\n"
                f"    include {prefix}/conf.d/*.conf;\n"
                "}\n")
            argv = [binary, "-p", f"{prefix}/", "-c", f"{prefix}/nginx.conf", "-e", f"{prefix}/logs/error.log"]
            check = subprocess.run(argv + ["-t"], capture_output=True, text=True)
            if check.returncode != 0:
                raise StartError(f"nginx -t refused the configuration:\n{check.stderr}")
            log = prefix / "logs" / "nginx.stderr"
            with open(log, "ab") as err:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                        preexec_fn=_child_setup, close_fds=True)
            n = cls(prefix, port, proc)
            try:
                _wait_http(port, "/nginx-health", proc, prefix / "logs" / "error.log", "nginx", 10.0)
                return n
            except StartError as e:
                last = str(e)
                n.stop()
        raise StartError(last)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def error_tail(self) -> str:
        return tail(self.error_log)
