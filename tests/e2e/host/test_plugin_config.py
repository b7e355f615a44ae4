"""A plugin that refuses its config stops the host at start-up (exit code 2)."""

from __future__ import annotations

import json
import subprocess

import pytest

from e2e_host_support import base_config
from aurora_host import free_port


def run_host(artefacts, tmp_path, config: dict, timeout: float = 20.0) -> subprocess.CompletedProcess:
    path = tmp_path / "host.json"
    config = dict(config, listen={"host": "127.0.0.1", "port": free_port()})
    path.write_text(json.dumps(config))
    return subprocess.run([str(artefacts.require(artefacts.host)), "--config", str(path)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("config,needle", [
    ({"threads": 2, "bogus": 1}, "bogus"),
    ({"threads": "8"}, "threads"),
    ({"threads": -1}, "threads"),
    ({"room": ""}, "room"),
], ids=["unknown_key", "wrong_type", "out_of_range", "empty_room"])
def test_bad_plugin_config_exits_2(artefacts, tmp_path, config, needle):
    proc = run_host(artefacts, tmp_path, base_config([artefacts.stress_plugin(config)]))
    assert proc.returncode == 2, f"exit code {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
    assert needle in proc.stderr, f"stderr does not name {needle!r}:\n{proc.stderr[-3000:]}"
    assert "stress" in proc.stderr, f"stderr does not name the plugin:\n{proc.stderr[-3000:]}"
