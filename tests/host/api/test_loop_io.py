"""ABI 1.2, the service loop (io_watch, io_set, io_stop, timer_start,
timer_stop, call_before_sleep), through a real aurora-host with the
loop_probe fixture plugin (tests/host/api/loop_probe.c): a before-sleep call
runs after the hook and before the loop waits, a watched descriptor's
callback runs when it is ready and may stop its own watch, one-shot and
repeating timers fire and stop themselves, bad arguments are refused, and
every one of these functions is refused off the service thread."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import AuroraHost, build_dir  # noqa: E402
from probe_host import HOST, require  # noqa: E402

LOOP_PROBE = build_dir() / "tests" / "host" / "api" / "loop_probe.so"
AURORA_ERR_INVALID = 2


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    cfg = {"log": {"level": "info", "format": "json"}, "allow_anonymous": True,
           "plugins": [{"name": "loop_probe", "path": require(LOOP_PROBE)}]}
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("loop-io"), cfg)
    yield h
    assert h.stop() == (0, False), h.stderr_tail()  # shutdown stops what init watched


def loop_once(host) -> dict:
    with connect(host.ws_url, open_timeout=5) as ws:
        ws.send('{"type":"loop"}')
        return json.loads(ws.recv(timeout=5))


def test_before_sleep_then_io_and_timers_on_the_service_loop(host):
    got = loop_once(host)
    steps = got["steps"].split(",")
    assert steps[0] == "hook", steps
    assert sorted(steps) == sorted(["hook", "before_sleep", "io", "timer", "repeat3"]), steps
    # The byte the before-sleep call wrote is what made the pipe readable.
    assert steps.index("before_sleep") < steps.index("io"), steps
    assert got["init_timer"] == 1  # armed during init, fired once the loop ran


def test_bad_arguments_are_refused(host):
    got = loop_once(host)
    assert got["second_watch"] == 1, "a second watch of one descriptor must be refused"
    assert got["bad_mask"] == 1, "an unknown event bit must be refused"
    assert got["set_bad"] == AURORA_ERR_INVALID


def test_every_loop_function_is_refused_off_the_service_thread(host):
    deadline = time.monotonic() + 5
    got = loop_once(host)
    while got["worker"] == "running":  # the worker thread reports once it has tried (bounded)
        assert time.monotonic() < deadline
        got = loop_once(host)
    assert got["worker"] == "refused", got
    log = host.stderr_tail()
    for fn in ("io_watch", "io_set", "timer_start", "call_before_sleep"):
        assert f"{fn} called off the service thread: refused" in log, (fn, log[-2000:])


def test_a_stopped_watch_frees_its_descriptor(host):
    # Each run closes its pipe after io_stop, so the next run's pipe gets the
    # same descriptor numbers: a watch that io_stop left registered would
    # make the next io_watch of that number fail (one watch per descriptor)
    # and the run would never see its byte.
    for _ in range(20):
        assert loop_once(host)["steps"].count("io") == 1
