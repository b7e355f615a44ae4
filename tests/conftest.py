"""Session fixtures shared by every pytest suite: real servers on free ports.

`redis_server` and `mongo_server` start one real redis-server / FerretDB per
test session and stop them at the end, even when tests fail. If a server
cannot start, every test that asked for it fails with the server's log tail.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from real_servers import FerretDbServer, RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_server():
    server = FerretDbServer.start()
    try:
        yield server
    finally:
        server.stop()
