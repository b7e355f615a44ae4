"""A plugin built against the FROZEN ABI v1.0 headers loads and works in
today's host (aurora/common.h: "an older plugin in a newer host always
loads"). The plugin is tests/abi/frozen_v1_0_plugin.c, compiled only against
tests/abi/v1_0/include; CTest passes its path in AURORA_FROZEN_V1_0_PLUGIN.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from native import plugin_descriptor  # tests/support
from websockets.sync.client import connect

REPLY_TIMEOUT_S = 10
V1_0_SIZE = 104  # AURORA_PLUGIN_V1_0_SIZE on LP64, pinned by tests/sdk/abi_layout_test.c


@pytest.fixture(scope="session")
def frozen_plugin(build_dir: Path) -> Path:
    path = Path(os.environ.get("AURORA_FROZEN_V1_0_PLUGIN") or build_dir / "tests" / "abi" / "frozen_v1_0.so")
    if not path.is_file():
        pytest.fail(f"{path} is not built: `cmake --build {build_dir} --target aurora_abi_frozen_v1_0`")
    return path


def frozen_config(plugin: Path) -> dict:
    return {"plugins": [{"name": "frozen_v1_0", "path": str(plugin)}]}


def test_fixture_is_a_v1_0_plugin(frozen_plugin):
    d = plugin_descriptor(frozen_plugin)
    assert (d["struct_size"], d["abi_major"], d["abi_minor"], d["name"]) == (V1_0_SIZE, 1, 0, "frozen_v1_0")


def test_check_config_accepts_the_v1_0_plugin(frozen_plugin, check_config):
    result = check_config({"listen": {"host": "127.0.0.1", "port": 0}, **frozen_config(frozen_plugin)})
    assert result.returncode == 0, f"exit code {result.returncode}\n--- stderr ---\n{result.stderr}"
    assert "config ok" in result.stdout + result.stderr
    # init ran and called host->log through the v1.0 table.
    assert "built against ABI 1.0" in result.stdout + result.stderr, result.stderr


@pytest.mark.e2e
def test_v1_0_plugin_replies_over_websocket(frozen_plugin, start_host):
    host = start_host({"allow_anonymous": True, **frozen_config(frozen_plugin)})
    with connect(f"ws://127.0.0.1:{host.port}/", open_timeout=REPLY_TIMEOUT_S) as ws:
        ws.send(json.dumps({"type": "frozen_ping"}))
        assert json.loads(ws.recv(timeout=REPLY_TIMEOUT_S)) == {"type": "frozen", "abi": "1.0"}

        # CONTINUE from the only plugin: the host answers `unhandled`.
        ws.send(json.dumps({"type": "something_else", "ref": "r1"}))
        reply = json.loads(ws.recv(timeout=REPLY_TIMEOUT_S))
        assert (reply.get("type"), reply.get("code"), reply.get("ref")) == ("error", "unhandled", "r1"), reply

        ws.send(json.dumps({"type": "frozen_ping"}))
        assert json.loads(ws.recv(timeout=REPLY_TIMEOUT_S)) == {"type": "frozen", "abi": "1.0"}
    assert host.stop() == 0, f"aurora-host did not shut down cleanly; its log:\n{host.log_tail()}"
    assert "built against ABI 1.0" in host.log()
