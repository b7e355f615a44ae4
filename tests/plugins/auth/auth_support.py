"""Fixtures for the auth plugin tests: an aurora-host running auth (plus the
probe and echo fixtures where a WebSocket needs a conversation), each host on
its own MongoDB database and Redis key prefix so tests never see each other's
users or counters."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "support"))

from aurora_host import AuroraHost, build_dir, deep_merge  # noqa: E402

BUILD = build_dir()
HOST = BUILD / "host" / "aurora-host"
AUTH = BUILD / "plugins" / "auth.so"
ECHO = BUILD / "plugins" / "echo.so"
PROBE = BUILD / "tests" / "host" / "api" / "probe.so"
CHAT = BUILD / "plugins" / "chat.so"
REPO = HERE.parents[2]

SECRET = "k3y-for-tests-only-0123456789-abcdefghijklmnop"  # 46 bytes, not a known default


def require(path: Path) -> str:
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first (cmake --build {BUILD})")
    return str(path)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def auth_host_config(redis_server, mongo_server, auth_config: dict | None = None, with_echo: bool = True,
                     with_probe: bool = False, secret: str = SECRET, **extra) -> dict:
    """A host config: auth first, then probe (whoami) and echo if asked.

    The tests register many users from 127.0.0.1, often concurrently, so the
    per-address registration throttle and in-progress cap are off unless a
    test sets them (test_throttle.py, test_register_flood.py)."""
    auth = {"redis_prefix": unique("t") + ":", "bcrypt_cost": 4, "register_max_per_addr": 0,
            "max_pending_per_addr": 0}
    auth.update(auth_config or {})
    plugins = [{"name": "auth", "path": require(AUTH), "config": auth}]
    if with_probe:
        plugins.append({"name": "probe", "path": require(PROBE)})
    if with_echo:
        plugins.append({"name": "echo", "path": require(ECHO), "config": {"tick_ms": 0}})
    cfg = {
        "log": {"level": "info", "format": "json"},
        "redis": {"url": redis_server.url},
        "mongo": {"url": mongo_server.url(unique("auth"))},
        "jwt": {"secret": secret},
        "plugins": plugins,
    }
    return deep_merge(cfg, extra)


@pytest.fixture
def start_host(tmp_path):
    """start_host(config) -> a running AuroraHost, stopped (exit 0) at teardown."""
    hosts = []

    def start(config: dict) -> AuroraHost:
        h = AuroraHost.start(Path(require(HOST)), tmp_path / f"h{len(hosts)}", config)
        hosts.append(h)
        return h

    yield start
    for h in hosts:
        code, killed = h.stop()
        assert (code, killed) == (0, False), h.stderr_tail()


@pytest.fixture(scope="module")
def auth_host(redis_server, mongo_server, tmp_path_factory):
    """One host for the read-mostly tests: auth, probe (whoami), echo."""
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("auth-host"),
                         auth_host_config(redis_server, mongo_server, with_probe=True,
                                          auth_config={"cors_origins": ["http://app.example"]}))
    yield h
    code, killed = h.stop()
    assert (code, killed) == (0, False), h.stderr_tail()


# A host config fragment: X-Forwarded-For from the test client (127.0.0.1) is
# believed, so a test can speak from any client address.
TRUST_LOOPBACK = {"trusted_proxies": ["127.0.0.1"]}


def from_addr(addr: str) -> dict:
    """Headers that make the host see `addr` as the client (with TRUST_LOOPBACK)."""
    return {"X-Forwarded-For": addr}


def post_json(host, path: str, body, headers: dict | None = None, timeout: float = 10.0):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return host.get(path, method="POST", body=data,
                    headers={"Content-Type": "application/json", **(headers or {})}, timeout=timeout)


class ArrivalProbe:
    """Waits until N more HTTP requests have reached a host (its
    aurora_http_requests_total, counted when a request's head is parsed,
    before any plugin sees it). Each probe is itself a request: counted out."""

    def __init__(self, host):
        self.host = host
        self.base = host.metrics().total("aurora_http_requests_total")

    def wait(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            polls += 1
            arrived = self.host.metrics().total("aurora_http_requests_total") - self.base - polls
            if arrived >= n:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"only {arrived:.0f} of {n} requests reached the host within {timeout} s")
            time.sleep(0.01)  # polling a counter, bounded by the deadline
