"""Fixtures and helpers for the ingest plugin tests (conftest.py re-exports
the fixtures; tests import helpers from here, a module name unique in the
repository): aurora-host processes
running ingest (and chat, with the probe fixture for identities) against the
session's real Redis and FerretDB. Every test uses its own stream and its own
MongoDB database, so tests never see each other's messages. Every wait polls
a condition with a deadline."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pymongo
import pytest
import redis as redis_py

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "support"))
sys.path.insert(0, str(HERE.parents[1] / "plugins" / "auth"))

from aurora_host import AuroraHost, build_dir, deep_merge  # noqa: E402

BUILD = build_dir()
HOST = BUILD / "host" / "aurora-host"
INGEST = BUILD / "plugins" / "ingest.so"
CHAT = BUILD / "plugins" / "chat.so"
PROBE = BUILD / "tests" / "host" / "api" / "probe.so"
SECRET = "ingest-test-secret-0123456789-abcdefghijklmnop"


def require(path: Path) -> str:
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first (cmake --build {BUILD})")
    return str(path)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def oid(n: int) -> str:
    """A 24-hex userId (the seed stores userId as an ObjectId)."""
    return f"{n:024x}"


def wait_for(pred, what: str, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Ctx:
    """One test's names: stream, dead-letter stream, database."""

    def __init__(self, redis_server, mongo_server):
        self.redis_server = redis_server
        self.mongo_server = mongo_server
        self.stream = unique("s") + ":messages"
        self.dead = self.stream + ":dead"
        self.db = unique("ingest")
        self.r = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
        self.mongo = pymongo.MongoClient(mongo_server.url(self.db), serverSelectionTimeoutMS=5000)

    @property
    def coll(self):
        return self.mongo[self.db]["messages"]

    def ingest_config(self, **settings) -> dict:
        cfg = {"stream": self.stream, "dead_letter_stream": self.dead, "history": False}
        cfg.update(settings)
        return cfg

    def host_config(self, plugins: list[dict], **extra) -> dict:
        base = {"log": {"level": "info", "format": "json"}, "redis": {"url": self.redis_server.url},
                "mongo": {"url": self.mongo_server.url(self.db)}, "jwt": {"secret": SECRET},
                "plugins": plugins}
        return deep_merge(base, extra)

    def ingest_plugin(self, **settings) -> dict:
        return {"name": "ingest", "path": require(INGEST), "config": self.ingest_config(**settings)}

    def group_info(self) -> dict:
        for g in self.r.xinfo_groups(self.stream):
            if g["name"] == "mongo_workers":
                return g
        return {}

    def drained(self) -> bool:
        """Every entry delivered and acknowledged."""
        g = self.group_info()
        return bool(g) and g.get("lag") == 0 and g.get("pending") == 0

    def close(self):
        self.r.close()
        self.mongo.close()


@pytest.fixture
def ctx(redis_server, mongo_server):
    c = Ctx(redis_server, mongo_server)
    yield c
    c.close()


@pytest.fixture
def start_host(tmp_path):
    """start_host(config) -> a running AuroraHost; stopped at teardown."""
    hosts = []

    def start(config: dict, name: str = "") -> AuroraHost:
        h = AuroraHost.start(Path(require(HOST)), tmp_path / f"{name or 'h'}{len(hosts)}", config)
        hosts.append(h)
        return h

    yield start
    for h in hosts:
        h.stop()


def wait_ready(host: AuroraHost, want: int = 200, timeout: float = 20.0) -> None:
    wait_for(lambda: host.get("/ready").status == want, f"/ready == {want}", timeout)
