"""Fixtures for the end-to-end tests of aurora-host.

Artefacts come from the build folder ($AURORA_BUILD_DIR, default build/):
  host/aurora-host, plugins/echo.so (samples/echo), tests/e2e/plugins/stress.so
  (tests/e2e/plugins/stress.c). A missing artefact fails the test; it never
  skips it.

`start_host(plugins, **config)` starts an aurora-host on a free port with
  {"allow_anonymous": true, "log": {"level": "info", "format": "json"}} plus
  the given keys, waits until GET /health answers 200, and stops it at the
  end of the test (SIGTERM, SIGKILL after 10 s). A host that does not exit
  with 0 on SIGTERM, or that died during the test, fails the test's teardown
  with its stderr tail.
`echo_host` is one such host per test module with the echo plugin and
  limits max_frame_bytes 4096 / hard_max_frame_bytes 65536.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from aurora_host import AuroraHost, HostStartError, build_dir, deep_merge  # noqa: E402

ECHO_LIMITS = {"max_frame_bytes": 4096, "hard_max_frame_bytes": 65536}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (heavy traffic)")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


class Artefacts:
    def __init__(self, root: Path):
        self.root = root
        self.host = root / "host" / "aurora-host"
        self.echo = root / "plugins" / "echo.so"
        self.stress = root / "tests" / "e2e" / "plugins" / "stress.so"

    def require(self, path: Path) -> Path:
        if not path.is_file():
            pytest.fail(f"{path} is missing: build it first "
                        f"(cmake --build {self.root} --target <target>; AURORA_BUILD_DIR={self.root})")
        return path

    def echo_plugin(self, config: dict | None = None, name: str = "echo") -> dict:
        return {"name": name, "path": str(self.require(self.echo)),
                "config": {"tick_ms": 0} if config is None else config}

    def stress_plugin(self, config: dict | None = None, name: str = "stress") -> dict:
        spec = {"name": name, "path": str(self.require(self.stress))}
        if config is not None:
            spec["config"] = config
        return spec


@pytest.fixture(scope="session")
def artefacts() -> Artefacts:
    return Artefacts(build_dir())


def base_config(plugins: list[dict], **extra) -> dict:
    cfg = {"allow_anonymous": True, "log": {"level": "info", "format": "json"}, "plugins": plugins}
    return deep_merge(cfg, extra)


def _launch(artefacts: Artefacts, workdir: Path, config: dict) -> AuroraHost:
    binary = artefacts.require(artefacts.host)
    try:
        return AuroraHost.start(binary, workdir, config)
    except HostStartError as e:
        pytest.fail(str(e), pytrace=False)


def _finish(host: AuroraHost) -> str | None:
    """Stops the host; a message if it did not end cleanly, else None."""
    if host.stopped_by_test:
        host.kill()  # the test checked the exit itself; make sure it is gone
        return None
    if not host.running():
        rc = host.proc.returncode
        return (f"aurora-host (pid {host.pid}) died during the test with code {rc}; "
                f"stderr tail:\n{host.stderr_tail()}")
    rc, killed = host.stop()
    if killed:
        return (f"aurora-host (pid {host.pid}) ignored SIGTERM for 10 s and was killed; "
                f"stderr tail:\n{host.stderr_tail()}")
    if rc != 0:
        return f"aurora-host exited with code {rc} after SIGTERM (expected 0); stderr tail:\n{host.stderr_tail()}"
    return None


@pytest.fixture
def start_host(artefacts, tmp_path):
    hosts: list[AuroraHost] = []

    def start(plugins: list[dict], **extra) -> AuroraHost:
        workdir = tmp_path / f"host{len(hosts)}"
        workdir.mkdir()
        host = _launch(artefacts, workdir, base_config(plugins, **extra))
        hosts.append(host)
        return host

    yield start
    problems = [p for p in (_finish(h) for h in hosts) if p]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def echo_host(artefacts, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("echo_host")
    host = _launch(artefacts, workdir, base_config([artefacts.echo_plugin()], limits=ECHO_LIMITS))
    yield host
    problem = _finish(host)
    if problem:
        pytest.fail(problem, pytrace=False)
