"""Fixtures of tests/plugins/auth live in auth_support.py (importable by a
unique name; see tests/e2e/host/conftest.py)."""

from auth_support import *  # noqa: F401,F403
from store_backends import mongo_server  # noqa: F401,E402  (both FerretDB backends)
