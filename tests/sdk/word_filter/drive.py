"""Runs an installed aurora-host with word_filter (built out of tree with
Aurora::kit) in front of echo, and checks what a client sees:

    drive.py <aurora-host> <workdir>

- a message holding a configured word: the error the kit's filter asked the
  host to build (code "refused", the frame's ref kept), and echo never sees it;
- any other message: echo's reply;
- a config with the wrong type for "words": the host refuses to start, and
  says which setting.
"""
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from aurora_host import AuroraHost, RawWebSocket  # noqa: E402

host_bin, workdir = Path(sys.argv[1]), Path(sys.argv[2])
plugins = [{"name": "word_filter", "config": {"words": ["darn"]}}, {"name": "echo", "config": {"tick_ms": 0}}]
host = AuroraHost.start(host_bin, workdir / "run", {"allow_anonymous": True, "plugins": plugins})
try:
    ws = RawWebSocket(host.port)
    ws.send_json({"type": "echo", "text": "oh darn", "ref": 7})
    refused = json.loads(ws.recv_frame()[1])
    assert (refused["type"], refused["code"], refused["ref"]) == ("error", "refused", 7), refused
    ws.send_json({"type": "echo", "text": "fine", "ref": 8})
    echoed = json.loads(ws.recv_frame()[1])
    assert (echoed["type"], echoed["text"], echoed["ref"]) == ("echo", "fine", 8), echoed
    ws.close()
finally:
    host.stop()

bad = workdir / "bad.json"
bad.write_text(json.dumps({"plugins": [{"name": "word_filter", "config": {"words": "darn"}}]}))
r = subprocess.run([str(host_bin), "--check-config", str(bad)], capture_output=True, text=True, timeout=60)
assert r.returncode != 0 and 'words' in r.stderr and 'must be an array of strings' in r.stderr, r.stderr
print("word_filter ok: refused with ref, passed the rest to echo, bad config named")
