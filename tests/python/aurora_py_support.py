"""Helpers of tests/python (a unique module name: every pytest suite of the
repository shares one sys.modules). The aurora package comes from the build
tree ($AURORA_BUILD_DIR/bindings/python, where CMake puts _core next to links
to the sources); built() gives the path of a built plugin or fails with the
command that builds it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("AURORA_BUILD_DIR") or REPO / "build").resolve()
PY_BUILD = BUILD / "bindings" / "python"
sys.path.insert(0, str(PY_BUILD))
sys.path.insert(0, str(REPO / "tests" / "support"))

if not any(PY_BUILD.glob("aurora/_core*.so")):
    raise pytest.UsageError(f"aurora._core is not built in {PY_BUILD}: "
                            f"`cmake --build {BUILD} --target aurora_python_core`")

TARGETS = {
    "echo": (BUILD / "plugins" / "echo.so", "aurora_plugin_echo"),
    "auth": (BUILD / "plugins" / "auth.so", "aurora_plugin_auth"),
    "ratelimit": (BUILD / "plugins" / "ratelimit.so", "aurora_plugin_ratelimit"),
    "chat": (BUILD / "plugins" / "chat.so", "aurora_plugin_chat"),
    "ingest": (BUILD / "plugins" / "ingest.so", "aurora_plugin_ingest"),
    "python_policy": (BUILD / "plugins" / "python_policy.so", "aurora_plugin_python_policy"),
    "probe": (BUILD / "tests" / "host" / "api" / "probe.so", "aurora_test_probe"),
    "wrong_major": (BUILD / "tests" / "host" / "loader" / "wrong_major.so", "aurora_loader_fixtures"),
    "newer_minor": (BUILD / "tests" / "host" / "loader" / "newer_minor.so", "aurora_loader_fixtures"),
    "aurora-host": (BUILD / "host" / "aurora-host", "aurora-host"),
}


def built(name: str) -> str:
    path, target = TARGETS[name]
    if not path.exists():
        pytest.fail(f"{path} is not built: `cmake --build {BUILD} --target {target}`")
    return str(path)


def wait_ready(host, deadline_s: float = 10.0) -> None:
    """Until an embedded aurora.Host says it is ready (its /ready), bounded."""
    import time
    deadline = time.monotonic() + deadline_s
    while not host.ready():
        assert time.monotonic() < deadline, f"the host was not ready within {deadline_s:.0f} s"
        time.sleep(0.02)  # polling /ready, bounded
