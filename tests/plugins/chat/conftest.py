"""Fixtures of the chat tests: a Redis of the module's own (the outage tests
stop and restart it; the server API and events tests read its keys)."""

import pytest

from real_servers import RedisServer


@pytest.fixture(scope="module")
def redis_srv():
    srv = RedisServer.start()
    yield srv
    srv.stop()
