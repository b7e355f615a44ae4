"""Fixtures and hooks of tests/e2e/host live in e2e_host_support.py, so that
test modules can import its helpers by a unique name (two conftest modules
would shadow each other when pytest collects several folders)."""

from e2e_host_support import *  # noqa: F401,F403
