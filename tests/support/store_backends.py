"""Both FerretDB backends for the suites that claim MongoDB behaviour
(ingest, history, auth): SQLite, the embedded default, and PostgreSQL, the
one that scales. A suite opts in with

    from store_backends import mongo_server, private_mongo  # noqa: F401

and each of its tests runs once per backend ([sqlite], [postgresql])."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from real_servers import FerretDbServer

# AURORA_STORE_BACKENDS=sqlite (comma-separated): a subset, as the sanitizer
# legs of scripts/test.sh run (Aurora's code is the same on either store).
BACKENDS = [b for b in os.environ.get("AURORA_STORE_BACKENDS", "sqlite,postgresql").split(",") if b]
_UNKNOWN = set(BACKENDS) - {"sqlite", "postgresql"}
if _UNKNOWN or not BACKENDS:
    raise RuntimeError(f"AURORA_STORE_BACKENDS: unknown backend(s) {sorted(_UNKNOWN)}; use sqlite and/or postgresql")


@pytest.fixture(scope="session", params=BACKENDS)
def mongo_server(request):
    """The session's FerretDB on each backend (tests/conftest.py starts them)."""
    return request.getfixturevalue(f"mongo_server_{request.param}")


@pytest.fixture(params=BACKENDS)
def private_mongo(request):
    """A FerretDB of the test's own, on each backend, for tests that stop,
    kill or freeze it. On PostgreSQL only FerretDB is private (its own
    database in the session's PostgreSQL): the faults are FerretDB's."""
    if request.param == "postgresql":
        pg = request.getfixturevalue("postgres_server")
        srv = FerretDbServer.start(postgresql_url=pg.create_database(f"private_{uuid.uuid4().hex[:10]}"))
    else:
        srv = FerretDbServer.start()
    yield srv
    if srv.proc and srv.proc.running():
        srv.proc.proc.send_signal(signal.SIGCONT)  # never left frozen, whatever failed
    srv.stop()
