"""Fan-out under load: 8 plugin threads broadcast 10,000 frames each to a room
of 50 clients; every client gets all 80,000, in order per thread.

The receiving side is AsyncRawWebSocket (tests/support/aurora_host.py): 4 million frames
through websockets' asyncio client would take longer than the deadline on
this machine, and the test is about the host, not the client library.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from aurora_host import OP_CLOSE, OP_TEXT, AsyncRawWebSocket, close_code

THREADS = 8
MESSAGES = 10000
CLIENTS = 50
ROOM = "stress"
DEADLINE_S = 120.0


class Receiver:
    """One client: checks per-thread order as frames arrive."""

    def __init__(self, index: int, ws: AsyncRawWebSocket):
        self.index = index
        self.ws = ws
        self.next_seq = [0] * THREADS
        self.bursts = 0
        self.others: list[dict] = []
        self.errors: list[str] = []
        self.ended: str | None = None  # why reading stopped early
        self.done = asyncio.Event()

    def complete(self) -> bool:
        return self.bursts == THREADS * MESSAGES

    async def run(self) -> None:
        loads = json.loads
        next_seq = self.next_seq
        try:
            while not self.complete():
                frames = await self.ws.read_frames()
                if not frames:
                    self.ended = "EOF"
                    return
                for op, payload in frames:
                    if op == OP_CLOSE:
                        self.ended = f"close frame {close_code(payload)}"
                        return
                    if op != OP_TEXT:
                        continue
                    msg = loads(payload)
                    if msg.get("type") != "burst":
                        self.others.append(msg)
                        continue
                    t, seq = msg["t"], msg["seq"]
                    if not 0 <= t < THREADS:
                        self.errors.append(f"unknown thread index {t}")
                    elif seq != next_seq[t]:
                        if len(self.errors) < 5:
                            self.errors.append(f"thread {t}: expected seq {next_seq[t]}, got {seq}")
                        next_seq[t] = seq + 1
                    else:
                        next_seq[t] = seq + 1
                    self.bursts += 1
        except (ConnectionError, OSError) as e:
            self.ended = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()


@pytest.mark.slow
def test_broadcast_reaches_every_client_in_order(start_host, artefacts):
    host = start_host(
        [artefacts.stress_plugin({"threads": THREADS, "messages": MESSAGES, "room": ROOM})],
        limits={"send_queue_max_frames": 200000, "send_queue_max_bytes": 64 << 20},
        # Under a sanitizer the 4M deliveries outlast a ping interval, and the
        # clients, busy reading, answer late: this test is about order, not heartbeats.
        heartbeat={"ping_interval_s": 600, "timeout_s": 600})

    async def scenario():
        sockets = await asyncio.gather(*[AsyncRawWebSocket.connect(host.port) for _ in range(CLIENTS)])
        for ws in sockets:
            await ws.send_json({"type": "join", "room": ROOM})
        for i, ws in enumerate(sockets):
            reply = await asyncio.wait_for(ws.recv_json(), 10)
            assert reply == {"type": "joined", "room": ROOM}, f"client {i}: {reply}"
        receivers = [Receiver(i, ws) for i, ws in enumerate(sockets)]
        tasks = [asyncio.ensure_future(r.run()) for r in receivers]
        t0 = time.monotonic()
        await sockets[0].send_json({"type": "start"})
        _, pending = await asyncio.wait(tasks, timeout=DEADLINE_S)
        elapsed = time.monotonic() - t0
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*[ws.close() for ws in sockets])
        return receivers, elapsed, bool(pending)

    receivers, elapsed, timed_out = asyncio.run(scenario())

    total = sum(r.bursts for r in receivers)
    print(f"\nbroadcast: {CLIENTS} clients x {THREADS * MESSAGES} frames = {total} frames received "
          f"in {elapsed:.2f} s ({total / elapsed:,.0f} frames/s delivered, "
          f"{THREADS * MESSAGES / elapsed:,.0f} broadcasts/s)")

    started = [m for m in receivers[0].others if m.get("type") == "started"]
    assert started and started[0].get("already") is False, f"client 0 got no 'started' reply: {receivers[0].others}"
    problems = []
    for r in receivers:
        unexpected = [m for m in r.others if m.get("type") != "started" or r.index != 0]
        if r.errors or unexpected or not r.complete():
            problems.append(
                f"client {r.index}: {r.bursts}/{THREADS * MESSAGES} bursts, next seq per thread {r.next_seq}, "
                f"order errors {r.errors}, other frames {unexpected[:3]}, "
                f"ended: {r.ended or ('deadline' if timed_out else 'complete')}")
    assert not problems, (f"{len(problems)} of {CLIENTS} clients did not get every burst in order "
                          f"(deadline {DEADLINE_S:.0f} s):\n" + "\n".join(problems[:10])
                          + f"\nhost stderr tail:\n{host.stderr_tail()}")
