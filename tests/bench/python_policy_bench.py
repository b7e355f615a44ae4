"""Per-message cost of the python_policy plugin, versus no policy. Prints
numbers; not a test.

    .cache/venv/bin/python tests/bench/python_policy_bench.py [--messages 20000]

Two measurements:
  1. aurora-host end to end: one WebSocket client pipelines N {"type":"echo"}
     frames through [echo] and through [python_policy, echo] (the policy
     judging "echo" frames with the sample profanity policy). The client (in
     Python) is slower than the host, so wall time says little: what is
     reported is the host process's CPU time (user + system, from
     /proc/PID/stat) per frame; the difference is what the policy costs the
     service thread.
  2. In-process (aurora.Plugin): the policy's own call_seconds histogram
     (time inside on_message, GIL taken and released included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

from aurora_host import AsyncRawWebSocket, AuroraHost, build_dir  # noqa: E402

BUILD = build_dir()
sys.path.insert(0, str(BUILD / "bindings" / "python"))
import aurora  # noqa: E402

POLICY = {"name": "python_policy", "path": str(BUILD / "plugins" / "python_policy.so"),
          "config": {"module": "profanity_policy", "path": [str(REPO / "samples" / "python")], "types": ["echo"]}}
ECHO = {"name": "echo", "path": str(BUILD / "plugins" / "echo.so")}


def cpu_seconds(pid: int) -> float:
    import os
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pump(port: int, n: int, text: str, pid: int) -> float:
    ws = await AsyncRawWebSocket.connect(port)
    frame = {"type": "echo", "text": text}
    for _ in range(200):  # warm-up
        await ws.send_json(frame)
    for _ in range(200):
        await ws.recv_json()
    t0 = cpu_seconds(pid)
    window = 256
    sent = got = 0
    while got < n:
        while sent < n and sent - got < window:
            await ws.send_json(frame)
            sent += 1
        await ws.recv_json()
        got += 1
    dt = cpu_seconds(pid) - t0
    await ws.close()
    return dt / n


def host_run(plugins: list[dict], n: int, text: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"allow_anonymous": True, "log": {"level": "warn"},
               "limits": {"send_queue_max_frames": 100000}, "plugins": plugins}
        h = AuroraHost.start(BUILD / "host" / "aurora-host", Path(tmp), cfg)
        try:
            return asyncio.run(pump(h.port, n, text, h.pid))
        finally:
            h.stop()


def in_process(n: int, text: str) -> tuple[float, float]:
    with aurora.Plugin.load(POLICY["path"], POLICY["config"]) as p:
        c = p.connect("bench")
        frame = json.dumps({"type": "echo", "text": text})
        t0 = time.perf_counter()
        for _ in range(n):
            p.message(c, frame)
        total = (time.perf_counter() - t0) / n
        m = p.metrics()
        return total, m["aurora_python_policy_call_seconds_sum"] / m["aurora_python_policy_call_seconds_count"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    args = ap.parse_args()
    n = args.messages
    print(f"{n} messages per run, one pipelined client, aurora-host {BUILD}")
    for label, text in [("clean text", "hello there, nothing to see"), ("bad word (replace)", "well darn it")]:
        base = host_run([ECHO], n, text)
        pol = host_run([POLICY, ECHO], n, text)
        total, inside = in_process(n, text)
        print(f"{label:20s} host CPU [echo]: {base * 1e6:6.1f} us/msg  [python_policy, echo]: {pol * 1e6:6.1f} us/msg"
              f"  policy cost: {(pol - base) * 1e6:6.1f} us/msg   inside on_message: {inside * 1e6:5.1f} us"
              f"   (aurora.Plugin round trip {total * 1e6:5.1f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
