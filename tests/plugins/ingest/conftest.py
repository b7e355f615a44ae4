"""Fixtures of tests/plugins/ingest live in ingest_support.py (importable by a
unique name; see tests/e2e/host/conftest.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_support import *  # noqa: F401,F403,E402
from store_backends import mongo_server, private_mongo  # noqa: F401,E402  (both FerretDB backends)
