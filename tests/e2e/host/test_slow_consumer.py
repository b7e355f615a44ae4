"""A client that stops reading is dropped (1008, counted), its queue bounded,
while the other clients keep being served."""

from __future__ import annotations

import re
import threading
import time

import pytest

from aurora_host import OP_CLOSE, OP_TEXT, RawWebSocket, close_code
from ws_client import connect, echo_round_trip, recv_json, send_json

QUEUE_FRAMES = 256
QUEUE_BYTES = 262144
BLOB_BYTES = 16384
BLOB_COUNT = 2000
# Two ways to outgrow the bound from a client that never reads; each would
# take 190-260 MiB of host memory if the queue were not bounded:
FLOODS = {
    # 8 pipelined requests for 2000 x 16 KiB: one hook queues far more than
    # the bound before any write happens.
    "one_hook_over_the_bound": dict(requests=8, count=BLOB_COUNT, paced=False),
    # 3000 requests for 4 x 16 KiB, each well within the bound and sent only
    # after the service loop has turned (an echo round trip on another
    # connection): the queue grows only because the socket stopped draining,
    # so it is the write path that must notice.
    "socket_stops_draining": dict(requests=3000, count=4, paced=True),
}
RSS_LIMIT = 200 << 20
DROP_DEADLINE_S = 15.0
EOF_DEADLINE_S = 10.0
SLOW_REASON = re.compile(r"slow|queue|overflow|backlog|1008|policy", re.I)


def slow_consumer_closes(m) -> float:
    return sum(v for labels, v in m.samples.get("aurora_closes_total", [])
               if any(SLOW_REASON.search(str(val)) for val in labels.values()))


class EchoLoop(threading.Thread):
    """Echo round trips on a well-behaved client until stopped."""

    def __init__(self, host):
        super().__init__(daemon=True)
        self.host = host
        self.stop_flag = threading.Event()
        self.round_trips = 0
        self.worst_s = 0.0
        self.failure: str | None = None

    def run(self) -> None:
        try:
            with connect(self.host) as ws:
                while not self.stop_flag.is_set():
                    t = time.monotonic()
                    echo_round_trip(ws, timeout=5.0)
                    self.worst_s = max(self.worst_s, time.monotonic() - t)
                    self.round_trips += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failure = f"{type(e).__name__}: {e}"

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(10)


@pytest.fixture
def bounded_host(start_host, artefacts):
    return start_host([artefacts.stress_plugin({"threads": 0}), artefacts.echo_plugin()],
                      # Input budgets out of the way: this is about the send queue.
                      limits={"send_queue_max_frames": QUEUE_FRAMES, "send_queue_max_bytes": QUEUE_BYTES,
                              "frames_per_s": 1000000, "frames_burst": 1000000})


@pytest.mark.slow
@pytest.mark.parametrize("flood", list(FLOODS))
def test_slow_consumer_is_dropped_and_memory_stays_bounded(bounded_host, flood):
    host = bounded_host
    requests, count, paced = FLOODS[flood]["requests"], FLOODS[flood]["count"], FLOODS[flood]["paced"]
    baseline_rss = host.rss_bytes()
    baseline_closes = slow_consumer_closes(host.metrics())
    echo = EchoLoop(host)
    echo.start()
    slow = RawWebSocket(host.port, rcvbuf=4096)
    try:
        slow.send_json({"type": "join", "room": "slow"})
        dropped_during_send = None
        sent = 0
        max_rss = baseline_rss
        with connect(host) as pacer:
            try:
                for sent in range(1, requests + 1):
                    slow.send_json({"type": "blob", "bytes": BLOB_BYTES, "count": count})
                    if paced:
                        echo_round_trip(pacer)
                        if sent % 8 == 0:
                            max_rss = max(max_rss, host.rss_bytes())
                            if slow_consumer_closes(host.metrics()) > baseline_closes:
                                break
            except (BrokenPipeError, ConnectionResetError) as e:
                dropped_during_send = e  # the host dropped us before the last request: fine
        # The slow client reads nothing from here on. Wait for the host to
        # count the drop, watching its memory and the other client.
        dropped_while_not_reading = False
        deadline = time.monotonic() + DROP_DEADLINE_S
        while time.monotonic() < deadline:
            max_rss = max(max_rss, host.rss_bytes())
            if slow_consumer_closes(host.metrics()) > baseline_closes:
                dropped_while_not_reading = True
                break
            time.sleep(0.05)  # polling /metrics, bounded by the deadline
        rounds_at_drop = echo.round_trips
        # The other client keeps working after the drop, too.
        deadline = time.monotonic() + 5.0
        while echo.round_trips < rounds_at_drop + 20 and echo.failure is None and time.monotonic() < deadline:
            max_rss = max(max_rss, host.rss_bytes())
            time.sleep(0.05)  # waiting for the echo thread, bounded by the deadline

        # Now read: the stream must end (EOF/reset), or carry a 1008 close.
        frames, ending = slow.drain_until_closed(EOF_DEADLINE_S)
    finally:
        slow.close()
        echo.finish()

    closes = [close_code(p) for op, p in frames if op == OP_CLOSE]
    blobs = sum(1 for op, p in frames if op == OP_TEXT and p.startswith(b'{"type":"blob"'))
    final = host.metrics()
    print(f"\nslow consumer ({flood}): baseline RSS {baseline_rss / 2**20:.1f} MiB, max {max_rss / 2**20:.1f} MiB; "
          f"{sent} requests sent; slow client got {blobs} blob frames, close codes {closes}, stream ended by {ending}"
          f"{' (already while sending: %r)' % dropped_during_send if dropped_during_send else ''}; "
          f"other client: {echo.round_trips} round trips, worst {echo.worst_s * 1000:.1f} ms")

    assert ending != "timeout" or closes == [1008], (
        f"the slow client's connection was neither closed nor sent a 1008 close within {EOF_DEADLINE_S} s "
        f"of reading again (frames read: {len(frames)}, close codes {closes})\n{host.stderr_tail()}")
    assert all(c == 1008 for c in closes), f"close code {closes}, expected 1008"
    assert blobs < BLOB_COUNT, f"the slow client got {blobs} blob frames: its queue was not bounded"
    assert dropped_while_not_reading, (
        f"no slow-consumer close in aurora_closes_total within {DROP_DEADLINE_S} s while the client was not "
        f"reading; closes now:\n{final.dump('aurora_closes_total')}\n{host.stderr_tail()}")
    assert slow_consumer_closes(final) >= baseline_closes + 1
    assert max_rss < RSS_LIMIT, f"host RSS reached {max_rss / 2**20:.1f} MiB (limit {RSS_LIMIT >> 20} MiB)"
    assert echo.failure is None, f"the well-behaved client failed: {echo.failure}\n{host.stderr_tail()}"
    assert echo.round_trips >= rounds_at_drop + 20, \
        f"the well-behaved client stalled: {echo.round_trips} round trips, {rounds_at_drop} at the drop"
    assert host.get("/health").status == 200


def test_consumer_that_keeps_up_is_not_dropped(bounded_host):
    """Batches under the bound, each read before the next: never dropped,
    though 40 x 128 KiB is far more than the bound in total."""
    host = bounded_host
    with connect(host) as ws:
        for batch in range(40):
            send_json(ws, {"type": "blob", "bytes": BLOB_BYTES, "count": 8})
            for i in range(8):
                msg = recv_json(ws)
                assert msg.get("type") == "blob" and msg.get("seq") == i, (batch, i, str(msg)[:100])
            done = recv_json(ws)
            assert done == {"type": "blob_done", "count": 8, "bytes": BLOB_BYTES}, done
        echo_round_trip(ws)
