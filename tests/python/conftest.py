"""tests/python: puts the build tree's aurora package on sys.path (see
aurora_py_support.py) before any test module imports it."""

import aurora_py_support  # noqa: F401
