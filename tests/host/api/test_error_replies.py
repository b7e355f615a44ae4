"""The host's own error frame and the parsed "ref", for plugins (ABI 1.1:
msg_ref, msg_reply_error, send_error), through a real aurora-host with the
probe fixture plugin: the frame a plugin asks for is the frame the host sends
for its own refusals, byte for byte in shape, with the message's "ref"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import AuroraHost  # noqa: E402
from probe_host import HOST, host_config, require  # noqa: E402

AURORA_ERR_INVALID = 2


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("error-replies"), host_config())
    yield h
    assert h.stop() == (0, False), h.stderr_tail()


def ask(ws, frame: str) -> dict:
    ws.send(frame)
    return json.loads(ws.recv(timeout=5))


@pytest.mark.parametrize("ref_text", ['"a-\\"quoted\\"-ref"', "42", "-1.5", "1e3", '""', None])
def test_msg_ref_is_the_ref_the_host_parsed(host, ref_text):
    with connect(f"{host.ws_url}/?user=ref", open_timeout=5) as ws:
        frame = '{"type":"ref_of"' + (f',"ref":{ref_text}' if ref_text is not None else "") + "}"
        got = ask(ws, frame)
        assert got["type"] == "ref_of"
        assert got["ref"] == (json.loads(ref_text) if ref_text is not None else None)


@pytest.mark.parametrize("ref", ["r-1", 7, None])
def test_a_plugin_error_has_the_shape_of_the_hosts_own(host, ref):
    with connect(f"{host.ws_url}/?user=err", open_timeout=5) as ws:
        tail = {"ref": ref} if ref is not None else {}
        mine = ask(ws, json.dumps({"type": "refuse", **tail}))
        hosts = ask(ws, json.dumps({"type": 5, **tail}))  # refused by the host itself (bad_field)
        assert mine == {"type": "error", "code": "probe_refused", "message": 'refused by "probe"', **tail}
        assert set(hosts) == set(mine) and hosts["type"] == "error" and hosts.get("ref") == ref


def test_a_bad_code_is_refused(host):
    with connect(f"{host.ws_url}/?user=bad", open_timeout=5) as ws:
        assert ask(ws, '{"type":"refuse_bad_code","ref":1}') == {"type": "status", "status": AURORA_ERR_INVALID}


def test_send_error_later_with_the_messages_ref(host):
    with connect(f"{host.ws_url}/?user=later", open_timeout=5) as ws:
        ws.send('{"type":"refuse_later","ref":"x9"}')
        first = json.loads(ws.recv(timeout=5))
        canonical = ws.recv(timeout=5)
        second = json.loads(ws.recv(timeout=5))
        assert first == {"type": "error", "code": "later", "message": "sent with send_error", "ref": "x9"}
        # The ref text "01" (cJSON reads it as 1) goes out as canonical JSON, never verbatim.
        assert '"ref":1}' in canonical and json.loads(canonical)["code"] == "canonical"
        # A ref that is not a string or number, a code outside [a-z0-9_], a ref
        # that is not UTF-8: refused, nothing sent.
        assert second == {"type": "status", "bad_ref": AURORA_ERR_INVALID, "bad_code": AURORA_ERR_INVALID,
                          "bad_utf8": AURORA_ERR_INVALID}
        ws.send('{"type":"ref_of"}')  # nothing else was queued in between
        assert json.loads(ws.recv(timeout=5)) == {"type": "ref_of", "ref": None}
