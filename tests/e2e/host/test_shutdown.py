"""SIGTERM drains: every client gets close code 1001, the host exits 0 in 5 s."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed

from aurora_host import AsyncRawWebSocket

N_CLIENTS = 100
EXIT_DEADLINE_S = 5.0


async def _open_and_echo(host, i: int):
    ws = await aconnect(f"{host.ws_url}/", open_timeout=20, close_timeout=5)
    await ws.send(json.dumps({"type": "echo", "text": f"c{i}"}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply.get("text") == f"c{i}", reply
    return ws


async def _close_code(ws) -> int | str:
    try:
        frame = await ws.recv()
        return f"a frame instead of a close: {frame[:100]!r}"
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else "no close frame"


def _wait_exit(host, t0: float) -> tuple[int | None, float]:
    try:
        rc = host.wait(max(0.0, EXIT_DEADLINE_S - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0
    return rc, time.monotonic() - t0


@pytest.mark.slow
def test_sigterm_closes_every_client_with_1001_and_exits_0(start_host, artefacts):
    host = start_host([artefacts.echo_plugin(), artefacts.stress_plugin({"threads": 4})])

    async def scenario():
        clients = await asyncio.gather(*[_open_and_echo(host, i) for i in range(N_CLIENTS)])
        waiters = [asyncio.ensure_future(_close_code(ws)) for ws in clients]
        t0 = time.monotonic()
        host.terminate()
        done, pending = await asyncio.wait(waiters, timeout=EXIT_DEADLINE_S)
        for w in pending:
            w.cancel()
        codes = [w.result() if w in done else "no close within 5 s" for w in waiters]
        return codes, t0

    codes, t0 = asyncio.run(scenario())
    rc, elapsed = _wait_exit(host, t0)
    wrong = {i: c for i, c in enumerate(codes) if c != 1001}
    assert not wrong, (f"{len(wrong)} of {N_CLIENTS} clients did not get close code 1001: "
                       f"{dict(list(wrong.items())[:10])}\nstderr tail:\n{host.stderr_tail()}")
    assert rc is not None, f"the host did not exit within {EXIT_DEADLINE_S} s of SIGTERM\n{host.stderr_tail()}"
    assert rc == 0, f"exit code {rc} after SIGTERM (expected 0)\n{host.stderr_tail()}"
    print(f"\nSIGTERM with {N_CLIENTS} clients: exit 0 after {elapsed:.2f} s")


@pytest.mark.slow
def test_sigterm_stops_busy_workers(start_host, artefacts):
    """Workers in the middle of a long burst stop when the host asks them to."""
    host = start_host([artefacts.stress_plugin({"threads": 4, "messages": 100000000, "room": "busy"})])

    async def run():
        ws = await AsyncRawWebSocket.connect(host.port)
        await ws.send_json({"type": "join", "room": "busy"})
        assert (await asyncio.wait_for(ws.recv_json(), 10)).get("type") == "joined"
        await ws.send_json({"type": "start"})
        # The burst is flowing once a burst frame arrives, or a 1008 close:
        # this client cannot keep up with 4 threads and may be dropped first.
        try:
            while (await asyncio.wait_for(ws.recv_json(), 10)).get("type") != "burst":
                pass  # the "started" reply
        except EOFError as e:
            assert "1008" in str(e), f"unexpected end of the stream: {e}"
        t0 = time.monotonic()
        host.terminate()
        # Keep reading (the queue may be over its bound by now: a 1008 close
        # is fine) so that nothing waits on this client.
        try:
            while await asyncio.wait_for(ws.read_frames(), EXIT_DEADLINE_S):
                pass
        except (asyncio.TimeoutError, ConnectionError):
            pass
        return t0

    t0 = asyncio.run(run())
    rc, elapsed = _wait_exit(host, t0)
    assert rc is not None, f"the host did not exit within {EXIT_DEADLINE_S} s of SIGTERM\n{host.stderr_tail()}"
    assert rc == 0, f"exit code {rc} after SIGTERM (expected 0)\n{host.stderr_tail()}"
    print(f"\nSIGTERM during a 4-thread burst: exit 0 after {elapsed:.2f} s")
