"""Smoke run of the benchmarks, so that they never rot: run_bench.py runs
every scenario (aurora-bench's fanout, rooms, connect, idle; ingest through
ingest_bench.py; a two-rate sweep) for a second or two with small counts
against real Redis, FerretDB and aurora-host processes, and plot_bench.py
draws the sweep. The numbers are not judged (a shared 2-core machine); the
JSON records are: their shape, no loss at a low rate, percentiles in order,
the latency CDF monotone up to 1. And Ctrl-C leaves no process behind.

The full runs are the commands in docs/performance.md."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from run_bench import children_of  # same folder (pytest puts it on sys.path)

HERE = Path(__file__).resolve().parent
RUN_BENCH = HERE / "run_bench.py"
PLOT_BENCH = HERE / "plot_bench.py"
RUN_TIMEOUT_S = 120  # a bound for a hung run, not an expected duration
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.e2e


def run_bench(results: Path, *args: str) -> list[dict]:
    """Runs run_bench.py; returns the objects it appended to `results`."""
    before = len(results.read_text().splitlines()) if results.exists() else 0
    proc = subprocess.run([sys.executable, str(RUN_BENCH), "--results", str(results), *args],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, (f"run_bench.py {' '.join(args)} exited {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in results.read_text().splitlines()[before:]]


def check_record(obj: dict, scenario: str) -> None:
    """What every record carries, whatever the scenario."""
    assert obj["scenario"] == scenario
    assert obj["params"]["scenario"] == scenario
    assert isinstance(obj["git_revision"], str) and obj["git_revision"].strip()
    m = obj["machine"]
    assert isinstance(m["nproc"], int) and m["nproc"] > 0
    assert m["cpu_model"].strip() and m["kernel"].startswith("Linux ") and m["mem_total_kb"] > 0
    assert obj["time_utc"].endswith("Z")
    assert obj["exit_status"] == 0
    assert "run_bench.py" in obj["runner"]["command"]
    assert isinstance(obj["results"], dict) and obj["results"]


def check_latency(obj: dict) -> None:
    """Percentiles in order, and a CDF that agrees with them."""
    r = obj["results"]
    assert 0 <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["p99_9_ms"] <= r["max_ms"], r
    cdf = obj["latency_cdf"]
    assert 2 <= len(cdf) <= 110, len(cdf)
    ms, frac = [p[0] for p in cdf], [p[1] for p in cdf]
    assert all(a <= b for a, b in zip(ms, ms[1:])), ms
    assert all(a < b for a, b in zip(frac, frac[1:])), frac
    assert 0 < frac[0] and frac[-1] == 1.0
    assert ms[0] >= 0 and ms[-1] == pytest.approx(r["max_ms"])

    def at_or_under(x: float) -> float:
        return max((f for v, f in cdf if v <= x), default=0.0)

    assert at_or_under(r["p50_ms"]) >= 0.5 - 1e-9
    assert at_or_under(r["p99_ms"]) >= 0.99 - 1e-9


def check_no_loss(obj: dict, per_message: int) -> None:
    p, r = obj["params"], obj["results"]
    assert r["sent"] == round(p["rate"] * p["duration"])
    assert r["expected"] == r["sent"] * per_message
    assert r["delivered"] == r["expected"] and r["lost"] == 0, r
    assert r["deliveries_per_s"] > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_fanout(tmp_path, threads):
    [obj] = run_bench(tmp_path / "results.jsonl", "--replicas", "2", "--",
                      "--scenario", "fanout", "--subscribers", "50", "--publishers", "2",
                      "--rate", "25", "--duration", "2", "--threads", str(threads))
    check_record(obj, "fanout")
    assert obj["params"]["threads"] == threads
    assert obj["params"]["replicas"] == 2 and len(obj["params"]["ports"]) == 2
    assert obj["params"]["subscribers"] == 50 and obj["results"]["host_processes"] == 2
    check_no_loss(obj, per_message=50)
    check_latency(obj)
    assert "aurora-bench" in obj["command"]


def test_rooms(tmp_path):
    [obj] = run_bench(tmp_path / "results.jsonl", "--replicas", "2", "--",
                      "--scenario", "rooms", "--connections", "40", "--rooms", "10",
                      "--rate", "20", "--duration", "1")
    check_record(obj, "rooms")
    check_no_loss(obj, per_message=4)
    check_latency(obj)


@pytest.mark.parametrize("scenario", ["connect", "idle"])
def test_connections(tmp_path, scenario):
    [obj] = run_bench(tmp_path / "results.jsonl", "--", "--scenario", scenario, "--connections", "200")
    check_record(obj, scenario)
    r = obj["results"]
    if scenario == "connect":
        assert r["handshakes"] == 200 and r["handshakes_per_s"] > 0 and r["seconds"] > 0
        check_latency(obj)  # handshake latency: connect() to the 101
        assert r["max_ms"] <= r["seconds"] * 1000 + 1, r
    else:
        assert r["connections"] == 200 and r["host_rss_before_kb"] > 0 and r["host_rss_after_kb"] > 0
        assert r["host_rss_kb_per_connection"] == pytest.approx(
            (r["host_rss_after_kb"] - r["host_rss_before_kb"]) / 200)
        assert obj["latency_cdf"] == []


def test_ingest(tmp_path):
    [obj] = run_bench(tmp_path / "results.jsonl", "--", "--scenario", "ingest", "--processes", "1",
                      "--workers", "2", "--batch", "50", "--backlog", "300", "--rate", "100", "--duration", "1")
    check_record(obj, "ingest")
    p, r = obj["params"], obj["results"]
    assert p["processes"] == 1 and p["workers"] == 2 and p["batch"] == 50 and p["backlog"] == 300
    assert r["persisted_per_s"] > 0 and r["drain_s"] > 0
    assert r["inserted"] >= 300  # at-least-once: a redelivery may insert twice
    assert r["lag_entries"] == 100 and r["lag_stored"] >= 100
    assert 0 <= r["persist_lag_p50_ms"] <= r["persist_lag_p99_ms"]
    assert "ingest_bench.py" in obj["command"]


def test_sweep_and_plot(tmp_path):
    results = tmp_path / "results.jsonl"
    rows = run_bench(results, "--replicas", "2", "--sweep", "10,20", "--p99-ms", "50", "--",
                     "--subscribers", "30", "--duration", "1")
    assert [o["params"]["rate"] for o in rows] == [10, 20]
    assert len({o["sweep_id"] for o in rows}) == 1 and rows[0]["sweep_id"]
    for o in rows:
        check_record(o, "fanout")
        assert o["sweep_p99_limit_ms"] == 50
        check_no_loss(o, per_message=30)
        check_latency(o)

    png = tmp_path / "sweep.png"
    proc = subprocess.run([sys.executable, str(PLOT_BENCH), "--results", str(results), "--out", str(png)],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rows[0]["sweep_id"] in proc.stdout  # the latest sweep by default
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 300, (width, height)
    assert len(data) > 20_000  # three drawn panels, not an empty canvas


def test_generator_answers_heartbeat_pings(tmp_path, redis_server):
    """With a 1 s heartbeat, a 3 s run outlives ping + timeout: a generator
    that left pings unanswered would see its publisher and subscribers closed
    and report loss."""
    sys.path.insert(0, str(HERE))
    from aurora_host import AuroraHost, build_dir
    from run_bench import host_config

    cfg = host_config("chat", redis_server.url) | {"heartbeat": {"ping_interval_s": 1, "timeout_s": 1}}
    host = AuroraHost.start(build_dir() / "host/aurora-host", tmp_path / "host", cfg)
    try:
        proc = subprocess.run([str(build_dir() / "tests/bench/aurora-bench"), "--scenario", "fanout",
                               "--subscribers", "10", "--rate", "10", "--duration", "3",
                               "--ports", str(host.port), "--json", str(tmp_path / "r.jsonl")],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    finally:
        host.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_no_loss(json.loads((tmp_path / "r.jsonl").read_text()), per_message=10)


# ---- Ctrl-C ---------------------------------------------------------------------

def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_ctrl_c_leaves_no_process(tmp_path):
    results = tmp_path / "results.jsonl"
    with open(tmp_path / "run_bench.log", "wb") as log:
        # Its own session, so that SIGINT to its group is what Ctrl-C in a terminal sends.
        proc = subprocess.Popen([sys.executable, str(RUN_BENCH), "--results", str(results), "--replicas", "2",
                                 "--", "--scenario", "fanout", "--subscribers", "20", "--rate", "10",
                                 "--duration", "60"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "aurora-bench" not in children_of(proc.pid).values():
            assert proc.poll() is None, (tmp_path / "run_bench.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "aurora-bench did not start within 60 s"
            time.sleep(0.05)  # polling for the load generator, bounded
        started = children_of(proc.pid)
        assert sorted(started.values()) == ["aurora-bench", "aurora-host", "aurora-host", "redis-server"], started
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130, (tmp_path / "run_bench.log").read_text()[-3000:]
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)  # orphans, if any, are reaped by init; bounded
        assert not [(pid, name) for pid, name in started.items() if running(pid)]
        assert not results.exists() or not results.read_text().strip()  # an interrupted run records nothing
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_abuse_bench(tmp_path):
    """abuse_bench.py: the quiet and flood phases of two scenarios, one flooder, a second each."""
    results = tmp_path / "abuse.jsonl"
    proc = subprocess.run([sys.executable, str(HERE / "abuse_bench.py"), "--scenarios", "none,joinleave",
                           "--duration", "1", "--baseline", "1", "--flooders", "1", "--json", "--results",
                           str(results)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith("command: .cache/venv/bin/python tests/bench/abuse_bench.py")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [o["params"]["scenario"] for o in rows] == ["none", "joinleave"]
    for o in rows:
        assert o["bench"] == "abuse" and "abuse_bench.py" in o["command"]
        b = o["results"]["bystander"]
        for phase in ("quiet", "flood"):
            p = b[phase]
            assert p["sent"] == 20 and p["lost"] == 0 and p["n"] == 20, p  # 20 msg/s for 1 s, nothing lost
            assert 0 < p["p50_ms"] <= p["p99_ms"] <= p["max_ms"]
        assert not b["closes"]
    assert rows[0]["results"]["flooder"] is None
    stats = rows[1]["results"]["flooder"]["stats"]
    assert stats["connects"] >= 1 and stats["sent"] > 0 and stats.get("answered", 0) > 0, stats


def test_store_bench():
    """store_bench.py: two small sizes on both FerretDB backends; a row per backend and size."""
    proc = subprocess.run([sys.executable, str(HERE / "store_bench.py"), "--sizes", "500,1000", "--rooms", "10",
                           "--queries", "3"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("command: .cache/venv/bin/python tests/bench/store_bench.py")
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [("sqlite", "500"), ("sqlite", "1,000"),
                                            ("postgresql", "500"), ("postgresql", "1,000")], lines
    for r in rows:
        p50, p90, u50, u90 = map(float, r[2:])
        assert 0 < p50 <= p90 and 0 < u50 <= u90, r


def test_upload_bench():
    """upload_bench.py: two small sizes, a row of each phase per size."""
    proc = subprocess.run([sys.executable, str(HERE / "upload_bench.py"), "--sizes", "4096,300000", "--count", "3",
                           "--clients", "2"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("command: .cache/venv/bin/python tests/bench/upload_bench.py")
    assert sum("upload p50" in ln for ln in lines) == 2 and sum("download p50" in ln for ln in lines) == 2, lines
    assert sum("clients at once:" in ln for ln in lines) == 2, lines  # the header says "2 clients at once" too


def test_token_bench():
    """token_bench: every kind of token verified, a row each."""
    from aurora_host import build_dir
    binary = build_dir() / "tests" / "bench" / "token_bench"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it first")
    proc = subprocess.run([str(binary), "--tokens", "50"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "command: build/tests/bench/token_bench --tokens 50"
    rows = lines[2:]
    assert [r.split("  ")[0] for r in rows] == ["HS256 (user service)", "RS256 by kid (RSA 2048)", "ES256 by kid (P-256)",
                                                 "RS256, no kid, 4th of 4 kid-less keys",
                                                 "RS256 via libjwt (PEM per token; before)"], rows
    for r in rows:
        us, per_s = map(float, r.split()[-2:])
        assert us > 0 and per_s > 0, r
