"""Fixtures for the loader tests: the host binary, the refused plugins, and
`aurora-host --check-config` on a config written to the test's tmp_path.

The build folder is $AURORA_BUILD_DIR (set by scripts/test.sh and by CTest),
else <repo>/build. A missing binary or fixture fails the test with the
command that builds it; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECK_CONFIG_TIMEOUT_S = 60
# aurora-host applies these over the config file (docs/configuration.md); a
# developer's shell must not change what a test checks.
ENV_OVERRIDES = ("AURORA_HOST", "AURORA_PORT", "AURORA_REDIS_URL", "AURORA_MONGO_URL",
                 "AURORA_JWT_SECRET", "AURORA_PLUGIN_PATH", "AURORA_LOG_LEVEL")


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return Path(os.environ.get("AURORA_BUILD_DIR") or REPO_ROOT / "build").resolve()


@pytest.fixture(scope="session")
def host_binary(build_dir: Path) -> Path:
    path = build_dir / "host" / "aurora-host"
    if not os.access(path, os.X_OK):
        pytest.fail(f"aurora-host not found at {path}: build it with "
                    f"`cmake --build {build_dir} --target aurora-host` (or ./scripts/build.sh)")
    return path


@pytest.fixture(scope="session")
def loader_fixture(build_dir: Path):
    """loader_fixture("wrong_major") -> build/tests/host/loader/wrong_major.so"""
    def path_of(name: str) -> Path:
        path = build_dir / "tests" / "host" / "loader" / f"{name}.so"
        if not path.is_file():
            pytest.fail(f"loader fixture {path} is not built: "
                        f"`cmake --build {build_dir} --target aurora_loader_fixtures`")
        return path
    return path_of


@pytest.fixture(scope="session")
def echo_plugin(build_dir: Path) -> Path:
    path = build_dir / "plugins" / "echo.so"
    if not path.is_file():
        pytest.fail(f"{path} is not built: `cmake --build {build_dir} --target aurora_plugin_echo`")
    return path


@pytest.fixture
def check_config(host_binary: Path, tmp_path: Path):
    """check_config(cfg) writes cfg (a dict, or raw text) to tmp_path and runs
    `aurora-host --check-config` on it. Returns the CompletedProcess (text)."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}

    def run(config: dict | str, *, file_name: str = "config.json", cwd: Path | None = None):
        path = tmp_path / file_name
        path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
        return run_on(path, cwd=cwd)

    def run_on(path: Path, *, cwd: Path | None = None):
        argv = [str(host_binary), "--check-config", str(path)]
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", env=env, cwd=cwd or tmp_path,
                                  timeout=CHECK_CONFIG_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"`{' '.join(argv)}` did not exit within {CHECK_CONFIG_TIMEOUT_S} s; "
                        f"stderr so far:\n{e.stderr}")

    run.on_file = run_on
    return run
