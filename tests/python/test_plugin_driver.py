"""aurora.Plugin: the loader's checks, every hook, PENDING messages and HTTP
replies finished by the plugin's own threads, callbacks from native threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

import aurora
from aurora_py_support import BUILD, PY_BUILD, REPO, built
from native import python_child_env  # tests/support


def test_version_and_abi():
    assert aurora.__version__ == aurora.host_version() == "0.1.0"
    assert aurora.ABI_VERSION == f"{aurora.ABI_MAJOR}.{aurora.ABI_MINOR}" == "1.3"


def test_wrong_abi_raises_with_the_loaders_message():
    path = built("wrong_major")
    with pytest.raises(aurora.PluginLoadError) as err:
        aurora.Plugin.load(path)
    assert str(err.value) == (f"plugin {path}: built for ABI 2.0, this host implements ABI 1.3 "
                              "(the major version must match: rebuild the plugin against this SDK)")
    with pytest.raises(aurora.PluginLoadError, match=r"newer than this host's ABI 1\.3"):
        aurora.Plugin.load(built("newer_minor"))
    with pytest.raises(aurora.PluginLoadError, match="cannot load: .*No such file"):
        aurora.Plugin.load(str(BUILD / "nowhere.so"))


def test_same_message_as_aurora_host(tmp_path):
    """The refusal text is the host's own: one loader for both."""
    path = built("wrong_major")
    cfg = tmp_path / "c.json"
    cfg.write_text('{"plugins": [{"name": "x", "path": "%s"}]}' % path)
    host = subprocess.run([built("aurora-host"), "--check-config", str(cfg)], capture_output=True, text=True,
                          timeout=60)
    with pytest.raises(aurora.PluginLoadError) as err:
        aurora.Plugin.load(path)
    assert host.returncode == 2 and str(err.value) in host.stderr + host.stdout


def test_echo_every_hook():
    with aurora.Plugin.load(built("echo"), {"tick_ms": 0}) as p:
        assert (p.name, p.plugin_name, p.version, p.abi_version) == ("echo", "echo", "1.0.0", "1.3")
        assert p.authenticate("tok").verdict == "abstain"  # echo has no authenticate hook
        c = p.connect(user_id="u1", username="alice")
        assert p.message(c, {"type": "echo", "text": "é", "ref": "r"}).reply == {"type": "echo", "text": "é",
                                                                                 "ref": "r"}
        assert p.message(c, '{"type":"echo"}').reply["code"] == "bad_field"
        assert p.message(c, {"type": "join", "room": "lobby"}).verdict == "reply"
        assert p.members("lobby") == {c}
        assert p.leave(c, "lobby") == "ok" and p.rooms(c) == set()
        assert p.is_ready()
        p.disconnect(c)
        with pytest.raises(KeyError):
            p.message(c, {"type": "echo", "text": "gone"})
        with pytest.raises(ValueError, match="JSON object"):
            p.message(p.connect(), "[1]")
        assert "ready; ticks off" in p.logs()
    assert p.closed


def test_probe_pending_resumed_by_the_plugins_worker():
    with aurora.Plugin.load(built("probe")) as p:
        c = p.connect(user_id="bob", username="Bob")
        m = p.message(c, {"type": "defer_reply"})
        assert m.wait(timeout=5.0) == "reply"
        assert m.reply == {"type": "deferred", "conn": c}
        resumes = p.events("resume")
        assert resumes[-1]["thread"] != 0, "resumed from the probe's worker thread"
        assert p.message(c, {"type": "defer_drop"}).wait(5.0) == "drop"
        assert p.message(c, {"type": "echo", "defer": True}).wait(5.0) == "continue"
        assert p.metrics() == {"aurora_probe_deferred_total": 3.0}
        who = p.message(c, {"type": "whoami"}).reply
        assert (who["user"], who["name"], who["count"]) == ("bob", "Bob", 4)  # conn_get_data/conn_set_data


def test_probe_authenticate_join_refusal_http_and_call_on_service():
    with aurora.Plugin.load(built("probe")) as p:
        a = p.authenticate(query={"user": "carol"})
        assert (a.verdict, a.user_id, a.username) == ("accept", "carol", "user-carol")
        r = p.authenticate(query={"deny": "1"})
        assert (r.verdict, r.status, r.reason) == ("reject", 403, "denied by probe")
        assert p.authenticate(token="T").user_id == "T"
        assert p.authenticate().verdict == "abstain"
        c = p.connect("carol")
        assert p.join(c, "forbidden") == "denied" and p.join(c, "ok") == "ok"
        held = [(m, "/probe/held", False) for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")]
        assert p.routes() == ([("GET", "/probe/sync", False), ("POST", "/probe/async", False)] + held +
                              [("POST", "/probe/big", False)])
        # Body limits as aurora-host's: 64 KiB by default, the route's own
        # with http_route_limits (ABI 1.3; /probe/big: 8 KiB).
        assert p.http("POST", "/probe/async", body="x" * 70000).status == 413
        assert p.http("POST", "/probe/big", body="x" * 8193).status == 413
        assert p.http("POST", "/probe/big", body="x" * 8192).wait(5.0) == 201
        sync = p.http("GET", "/probe/sync")
        assert sync.done and sync.status == 200 and sync.json() == {"sync": True}
        slow = p.http("POST", "/probe/async", body={"x": 1})
        assert slow.wait(5.0) == 201 and slow.json() == {"x": 1} and slow.headers == {"X-Probe": "async"}
        assert p.http("GET", "/nothing").status == 404
        # join_via_worker: broadcast 1, call_on_service(join), broadcast 2 from the worker.
        p.message(c, {"type": "join_via_worker"})
        assert p.wait_for("join", count=2, timeout=5.0)
        assert "ordered" in p.rooms(c)
        def ordered():
            return [(e["kind"], e.get("to")) for e in p.events() if e["kind"] in ("broadcast", "join")
                    and e["room"] == "ordered"]
        deadline = time.monotonic() + 5.0
        # The worker queues the second broadcast after the join, and wait_for
        # returned on the join: keep running queued calls (the service
        # thread's job in aurora-host) until it lands.
        while len(ordered()) < 3 and time.monotonic() < deadline:
            if p.poll() == 0:
                time.sleep(0.01)  # polling a condition, bounded
        seq = ordered()
        assert seq == [("broadcast", []), ("join", None), ("broadcast", [c])], "one FIFO, as in aurora-host"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_callback_from_a_foreign_native_thread():
    """The pybind11 test_async_callbacks pattern: the probe's own thread calls
    host->send; the recording host calls into Python with the GIL taken."""
    with aurora.Plugin.load(built("probe")) as p:
        got: list[tuple[dict, int]] = []
        done = threading.Event()

        def on_event(e: dict) -> None:
            if e["kind"] == "send":
                got.append((e, threading.get_ident()))
                if len(got) == 50:
                    done.set()

        p.on_event(on_event)
        c = p.connect("dave")
        p.message(c, {"type": "send_from_thread", "n": 50})
        assert done.wait(5.0), f"only {len(got)} callbacks"
        assert {tid for _, tid in got} != {threading.get_ident()}, "ran on the native thread"
        assert [e["payload"] for e, _ in got][:2] == ['{"type":"threaded","seq":0}', '{"type":"threaded","seq":1}']

        def raising(e: dict) -> None:
            raise RuntimeError("boom in a callback")

        p.on_event(raising)  # an exception never reaches the plugin: reported as unraisable
        p.message(c, {"type": "send_from_thread", "n": 2})
        assert p.wait_for("send", count=52, timeout=5.0)


def test_close_joins_threads_while_callbacks_run():
    """close() releases the GIL while joining: a native thread blocked on the GIL finishes."""
    threads_before = len(os.listdir("/proc/self/task"))
    p = aurora.Plugin.load(built("echo"), {"tick_ms": 1})
    seen = []
    p.on_event(lambda e: (seen.append(e), time.sleep(0.001)))
    assert p.wait_for("broadcast", count=5, timeout=5.0)
    p.close()
    n = len(seen)
    # close() has joined the plugin's threads: none is left to call back.
    assert len(os.listdir("/proc/self/task")) == threads_before, "a native thread outlived close()"
    assert len(seen) == n, "no callback after close"


def test_only_the_service_thread_drives():
    with aurora.Plugin.load(built("echo")) as p:
        errors = []
        t = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, p.connect)))
        t.start()
        t.join()
        assert "service thread" in str(errors[0].value)


def test_interpreter_exit_with_an_open_plugin_joins_its_threads():
    code = ("import aurora; p = aurora.Plugin.load(%r, {'tick_ms': 1}); "
            "p.on_event(lambda e: None); p.wait_for('broadcast', 3); print('ok')") % built("echo")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=python_child_env(PYTHONPATH=str(PY_BUILD)))
    assert (out.returncode, out.stdout.strip()) == (0, "ok"), out.stderr


def test_sample_pytest_script():
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(REPO / "samples" / "python" / "test_echo_plugin.py")],
                         capture_output=True, text=True, timeout=120, cwd=REPO,
                         env=python_child_env(PYTHONPATH=str(PY_BUILD), AURORA_ECHO_PLUGIN=built("echo")))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "7 passed" in out.stdout
