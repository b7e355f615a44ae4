"""Session fixtures shared by every pytest suite: real servers on free ports.

`redis_server` and `mongo_server` start one real redis-server / FerretDB per
test session and stop them at the end, even when tests fail;
`mongo_server_postgresql` is FerretDB on a real PostgreSQL (`postgres_server`). If a server
cannot start, every test that asked for it fails with the server's log tail.
"""

import os
import sys
from pathlib import Path

import pytest

# Sanitizer legs (scripts/test.sh): this Python may run with a sanitizer
# runtime preloaded and lenient options (Python itself is not leak-clean).
# Every process the tests start gets the strict options back and no preload
# (aurora-host and the test binaries link the runtime themselves).
# Python children need the preload again: native.python_child_env().
for _key in [k for k in os.environ if k.startswith("AURORA_CHILD_ENV_")]:
    os.environ[_key[len("AURORA_CHILD_ENV_"):]] = os.environ.pop(_key)
if "LD_PRELOAD" in os.environ:
    os.environ["AURORA_PYTHON_PRELOAD"] = os.environ.pop("LD_PRELOAD")

sys.path.insert(0, str(Path(__file__).parent / "support"))

import aurora_host  # noqa: E402
from real_servers import FerretDbServer, PostgresServer, RedisServer  # noqa: E402


def pytest_runtest_setup(item):
    aurora_host.LAUNCHED.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the log tail of every aurora-host it started: a
    timeout in CI then says what the server saw."""
    report = (yield).get_result()
    if report.failed and report.when == "call":
        for host in aurora_host.LAUNCHED:
            report.sections.append((f"aurora-host {host.workdir} stderr (last 40 lines)", host.stderr_tail()))


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_server_sqlite():
    server = FerretDbServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_server(mongo_server_sqlite):
    """FerretDB on SQLite, the embedded default. The ingest and auth suites
    override it with both backends (store_backends.py)."""
    return mongo_server_sqlite


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_server_postgresql(postgres_server):
    """FerretDB on PostgreSQL: the second backend."""
    server = FerretDbServer.start(postgresql_url=postgres_server.create_database("ferretdb"))
    try:
        yield server
    finally:
        server.stop()
