"""The host's own HTTP endpoints: /health, /ready, /metrics."""

from __future__ import annotations

import subprocess
import time

import pytest
from websockets.exceptions import ConnectionClosed

from e2e_host_support import ECHO_LIMITS
from ws_client import connect, echo_round_trip, recv_json

FAMILIES = ["aurora_connections", "aurora_frames_in_total", "aurora_frames_out_total", "aurora_closes_total",
            "aurora_hook_duration_seconds"]


def test_health(echo_host):
    resp = echo_host.get("/health")
    assert resp.status == 200, resp
    assert resp.json().get("status") == "ok", resp.body
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers


def test_ready_when_every_plugin_is_ready(start_host, artefacts):
    host = start_host([artefacts.stress_plugin({"threads": 0}), artefacts.echo_plugin()])
    resp = host.get("/ready")
    assert resp.status == 200, (resp.status, resp.body)
    assert resp.json() == {"status": "ready"}


def test_not_ready_names_the_plugin(start_host, artefacts):
    host = start_host([artefacts.echo_plugin(), artefacts.stress_plugin({"threads": 0, "ready": False})])
    resp = host.get("/ready")
    assert resp.status == 503, (resp.status, resp.body)
    assert resp.json() == {"status": "not_ready", "plugins": ["stress"]}
    # Liveness is not readiness.
    assert host.get("/health").status == 200


def test_metrics_format_and_families(echo_host):
    resp = echo_host.get("/metrics")
    assert resp.status == 200
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp.headers
    m = echo_host.metrics()  # parses with prometheus_client, or raises
    missing = [f for f in FAMILIES if not m.has_family(f)]
    assert not missing, f"families missing from /metrics: {missing}; got {sorted(m.families)}"
    assert "histogram" in m.family_types("aurora_hook_duration_seconds"), m.families
    assert "gauge" in m.family_types("aurora_connections"), m.families
    for counter in ("aurora_frames_in_total", "aurora_frames_out_total", "aurora_closes_total"):
        assert "counter" in m.family_types(counter), (counter, m.families)


def test_memory_gauges_match_the_process(echo_host):
    """process_resident_memory_bytes is /proc's RSS; the heap gauges are
    malloc's view (in use > 0, in use + free within a sane bound of RSS)."""
    m = echo_host.metrics()
    rss = m.total("process_resident_memory_bytes")
    with open(f"/proc/{echo_host.pid}/status") as f:
        vm_rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    assert 0.5 * vm_rss < rss < 2 * vm_rss, (rss, vm_rss)
    in_use, free = m.total("aurora_heap_in_use_bytes"), m.total("aurora_heap_free_bytes")
    ldd = subprocess.run(["ldd", str(echo_host.binary)], capture_output=True, text=True).stdout
    if "libasan" in ldd:  # ASan's allocator replaces glibc's: mallinfo2 has nothing to report
        assert in_use == 0 and free == 0, (in_use, free)
    else:
        assert 0 < in_use < rss, (in_use, rss)
        assert free >= 0
    assert "counter" in m.family_types("aurora_heap_trims"), m.families


def _poll_metrics(host, predicate, what: str, deadline_s: float = 5.0):
    """Scrapes until predicate(metrics) holds (counters may lag the traffic a
    little when the host updates them off the hot path)."""
    deadline = time.monotonic() + deadline_s
    while True:
        m = host.metrics()
        if predicate(m):
            return m
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {deadline_s} s; last scrape:\n{m.dump('aurora_')}")
        time.sleep(0.05)  # polling /metrics, bounded by the deadline


def test_metrics_follow_traffic(echo_host):
    before = echo_host.metrics()
    n = 25
    with connect(echo_host) as ws:
        for _ in range(n):
            echo_round_trip(ws)
        during = _poll_metrics(
            echo_host,
            lambda m: m.total("aurora_frames_in_total") >= before.total("aurora_frames_in_total") + n
            and m.total("aurora_frames_out_total") >= before.total("aurora_frames_out_total") + n
            and m.total("aurora_connections") >= 1,
            f"frames_in/frames_out did not grow by {n} (before: in={before.total('aurora_frames_in_total')} "
            f"out={before.total('aurora_frames_out_total')}) or aurora_connections stayed < 1")
        hook_count = during.total("aurora_hook_duration_seconds_count")
        assert hook_count >= before.total("aurora_hook_duration_seconds_count") + n, \
            f"hook histogram count did not grow by {n}:\n{during.dump('aurora_hook_duration_seconds_count')}"


def test_server_close_is_counted(echo_host):
    before = echo_host.metrics().total("aurora_closes_total")
    with connect(echo_host) as ws:
        ws.send("x" * (ECHO_LIMITS["hard_max_frame_bytes"] + 10))
        with pytest.raises(ConnectionClosed):
            recv_json(ws, timeout=10, expect_close=True)
    _poll_metrics(echo_host, lambda m: m.total("aurora_closes_total") > before,
                  f"aurora_closes_total did not grow after a 1009 close (was {before})")


def test_unknown_http_path_is_404(echo_host):
    assert echo_host.get("/no/such/path").status == 404
