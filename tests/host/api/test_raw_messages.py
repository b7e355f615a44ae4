"""Raw messages (ABI 1.1, accept_raw_messages) through a real aurora-host:
the echo sample in raw mode gets text that is not JSON and binary messages
verbatim, in a frame of their kind; a plugin that did not ask for them (the
probe, first in the pipeline) never sees them; without such a plugin the host
answers them itself, as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import AuroraHost  # noqa: E402
from probe_host import ECHO, HOST, PROBE, require  # noqa: E402


def start(tmp_path, echo_config: dict) -> AuroraHost:
    cfg = {
        "log": {"level": "info", "format": "json"},
        "plugins": [{"name": "probe", "path": require(PROBE)},
                    {"name": "echo", "path": require(ECHO), "config": echo_config}],
    }
    return AuroraHost.start(Path(require(HOST)), tmp_path, cfg)


def test_raw_echo_returns_every_message_verbatim(tmp_path):
    h = start(tmp_path, {"mode": "raw"})
    try:
        with connect(f"{h.ws_url}/?user=alice", open_timeout=5, compression=None) as ws:
            messages = ["not json", "", "[1,2]", '{"type":"echo","text":"kept as sent"}',
                        "\u00e9\U0001f600", b"", b"\x00\x01\xfe\xff", bytes(range(256)) * 100]  # under limits.max_frame_bytes
            for m in messages:
                ws.send(m)
                assert ws.recv(timeout=5) == m  # same content, same frame kind (str/bytes)
        m = h.metrics()
        assert m.total("aurora_frame_errors_total") == 0, m.dump("aurora_frame_errors")
    finally:
        assert h.stop() == (0, False), h.stderr_tail()
    assert any("raw mode" in line for line in h.stderr_lines())


def test_without_a_raw_plugin_the_host_still_answers_itself(tmp_path):
    h = start(tmp_path, {"mode": "json", "tick_ms": 0})
    try:
        with connect(f"{h.ws_url}/?user=alice", open_timeout=5, compression=None) as ws:
            ws.send(b"\x00\x01")
            assert json.loads(ws.recv(timeout=5))["code"] == "binary_not_supported"
            ws.send("not json")
            assert json.loads(ws.recv(timeout=5))["code"] == "bad_json"
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


@pytest.mark.parametrize("mode", ["RAW", "", "binary"])
def test_a_bad_mode_stops_the_host_at_start(tmp_path, mode):
    cfg = tmp_path / "host.json"
    cfg.write_text(json.dumps({"plugins": [{"name": "echo", "path": require(ECHO), "config": {"mode": mode}}]}))
    out = subprocess.run([require(HOST), "--check-config", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    logged = [json.loads(line)["msg"] for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(m.startswith('config: "mode" must be') for m in logged), out.stderr
