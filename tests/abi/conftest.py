"""Fixtures for the ABI tests: the host binary, `--check-config`, and a
running aurora-host on a free port.

The build folder is $AURORA_BUILD_DIR (set by scripts/test.sh and by CTest),
else <repo>/build. A missing binary fails the test with the command that
builds it; nothing is skipped. Waiting is polling against a deadline.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

import pytest
from real_servers import free_port  # tests/support, put on sys.path by tests/conftest.py

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK_CONFIG_TIMEOUT_S = 60
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0  # shutdown_grace_ms (3 s by default) plus margin
POLL_INTERVAL_S = 0.02
START_ATTEMPTS = 3      # a free port can be taken between probe and bind
EXIT_FATAL = 1          # e.g. the port is taken (docs/configuration.md)
# aurora-host applies these over the config file (docs/configuration.md); a
# developer's shell must not change what a test checks.
ENV_OVERRIDES = ("AURORA_HOST", "AURORA_PORT", "AURORA_REDIS_URL", "AURORA_MONGO_URL",
                 "AURORA_JWT_SECRET", "AURORA_PLUGIN_PATH", "AURORA_LOG_LEVEL")


def host_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return Path(os.environ.get("AURORA_BUILD_DIR") or REPO_ROOT / "build").resolve()


@pytest.fixture(scope="session")
def host_binary(build_dir: Path) -> Path:
    path = build_dir / "host" / "aurora-host"
    if not os.access(path, os.X_OK):
        pytest.fail(f"aurora-host not found at {path}: build it with "
                    f"`cmake --build {build_dir} --target aurora-host` (or ./scripts/build.sh)")
    return path


@pytest.fixture
def check_config(host_binary: Path, tmp_path: Path):
    """check_config(cfg) writes cfg to tmp_path and runs `aurora-host --check-config`."""
    def run(config: dict):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config, indent=2))
        argv = [str(host_binary), "--check-config", str(path)]
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", env=host_env(), cwd=tmp_path,
                                  timeout=CHECK_CONFIG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(argv)}` did not exit within {CHECK_CONFIG_TIMEOUT_S} s")
    return run


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # in the child between fork and exec: die with pytest
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class RunningHost:
    """aurora-host --config FILE as a child process (output in a log file)."""

    def __init__(self, argv: list[str], log_path: Path, port: int):
        self.port = port
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=host_env(), preexec_fn=_child_setup, close_fds=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, max_lines: int = 40) -> str:
        with open(self.log_path, errors="replace") as f:
            lines = deque(f, maxlen=max_lines)
        return "".join("    | " + line for line in lines) or "    | (empty log)\n"

    def stop(self) -> int:
        """SIGTERM, then the exit code (0 is a clean shutdown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"aurora-host did not exit within {STOP_DEADLINE_S:.0f} s of SIGTERM; "
                            f"its log:\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _answers_health(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture
def start_host(host_binary: Path, tmp_path: Path):
    """start_host(cfg) runs aurora-host with cfg plus "listen" on a free
    loopback port, and returns once GET /health answers 200. Every host
    started is stopped at the end of the test."""
    started: list[RunningHost] = []

    def start(config: dict) -> RunningHost:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            path = tmp_path / f"host-{attempt}.json"
            path.write_text(json.dumps({**config, "listen": {"host": "127.0.0.1", "port": port}}, indent=2))
            host = RunningHost([str(host_binary), "--config", str(path)], tmp_path / f"host-{attempt}.log", port)
            started.append(host)
            deadline = time.monotonic() + START_DEADLINE_S
            while time.monotonic() < deadline and host.proc.poll() is None:
                if _answers_health(port):
                    return host
                time.sleep(POLL_INTERVAL_S)  # polling readiness, bounded by the deadline
            code = host.proc.poll()
            if code == EXIT_FATAL and attempt < START_ATTEMPTS:
                continue  # most likely the port was taken meanwhile: try another
            if code is None:
                pytest.fail(f"aurora-host did not answer GET /health on port {port} within "
                            f"{START_DEADLINE_S:.0f} s; its log:\n{host.log_tail()}")
            pytest.fail(f"aurora-host exited with code {code} before answering; its log:\n{host.log_tail()}")
        raise AssertionError("unreachable")

    yield start
    for host in started:
        host.kill()
