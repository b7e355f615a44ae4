"""What the tests of this folder share: the artefacts (aurora-host, the
probe fixture plugin, echo) and the config of a host with probe then echo."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import build_dir, deep_merge  # noqa: E402

BUILD = build_dir()
PROBE = BUILD / "tests" / "host" / "api" / "probe.so"
ECHO = BUILD / "plugins" / "echo.so"
HOST = BUILD / "host" / "aurora-host"


def require(path: Path) -> str:
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first (cmake --build {BUILD})")
    return str(path)


def host_config(probe_config: dict | None = None, **extra) -> dict:
    """probe (with `probe_config`), then echo (no ticks); `extra` keys merged
    in (objects key by key)."""
    cfg = {
        "log": {"level": "info", "format": "json"},
        "plugins": [
            {"name": "probe", "path": require(PROBE), "config": probe_config or {}},
            {"name": "echo", "path": require(ECHO), "config": {"tick_ms": 0}},
        ],
    }
    return deep_merge(cfg, extra)
