"""tests/conformance: protocol conformance suites run against a real
aurora-host. Every test here carries the `conformance` marker, so that
`pytest -m conformance` runs only these and `-m "not conformance"` leaves them
out."""

from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "conformance: an external conformance suite against aurora-host (Autobahn)")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.conformance)
