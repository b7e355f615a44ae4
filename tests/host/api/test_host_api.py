"""The host API seen through a real aurora-host: PENDING messages resumed from
a plugin thread, HTTP replies from a plugin thread, on_join refusals,
per-connection data, authenticate verdicts, heartbeats, JSON logs, env
overrides, several service processes on one port.

The probe fixture plugin (probe.c, next to this file) does the plugin side;
the echo sample sits after it in the pipeline."""

from __future__ import annotations

import json
import socket
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import AuroraHost, RawWebSocket, free_port, http_request  # noqa: E402
from probe_host import HOST, host_config, require  # noqa: E402

@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("probe-host"),
                         # 200 deferred messages in flight at once (test_many_pending_messages_keep_their_order)
                         host_config(limits={"http_max_body_bytes": 1024, "max_pending_per_conn": 256},
                                     probe_config={"check_route_limits": True}))
    yield h
    code, killed = h.stop()
    assert (code, killed) == (0, False), h.stderr_tail()


def ws(host, query="user=alice"):
    return connect(f"{host.ws_url}/?{query}", open_timeout=5)


def recv_json(c, timeout=5.0):
    return json.loads(c.recv(timeout=timeout))


def test_pending_reply_resumed_from_plugin_thread(host):
    with ws(host) as c:
        c.send('{"type":"defer_reply"}')
        reply = recv_json(c)
        assert reply["type"] == "deferred" and reply["conn"] > 0


def test_pending_drop_and_pending_continue(host):
    with ws(host) as c:
        c.send('{"type":"defer_drop"}')
        c.send('{"type":"echo","defer":true,"text":"after resume"}')
        # The dropped message produced nothing; the continued one reached echo.
        assert recv_json(c) == {"type": "echo", "text": "after resume"}


def test_many_pending_messages_keep_their_order(host):
    with ws(host) as c:
        for i in range(200):
            c.send(json.dumps({"type": "echo", "defer": True, "text": str(i)}))
        got = [recv_json(c)["text"] for _ in range(200)]
        assert got == [str(i) for i in range(200)]


def test_identity_and_per_connection_data(host):
    with ws(host, "user=alice") as c:
        for expected in (1, 2, 3):
            c.send('{"type":"whoami"}')
            assert recv_json(c) == {"type": "whoami", "user": "alice", "name": "user-alice", "count": expected,
                                    "addr": "127.0.0.1"}
    with ws(host, "user=bob") as c:  # a fresh connection has fresh data
        c.send('{"type":"whoami"}')
        assert recv_json(c)["count"] == 1


def test_authenticate_reject_and_no_anonymous(host):
    with pytest.raises(websockets.exceptions.InvalidStatus) as denied:
        ws(host, "deny=1")
    assert denied.value.response.status_code == 403
    with pytest.raises(websockets.exceptions.InvalidStatus) as anonymous:
        ws(host, "")
    assert anonymous.value.response.status_code == 401


@pytest.mark.parametrize("how", ["subprotocol", "subprotocol_with_aurora", "authorization", "query"])
def test_bearer_token_reaches_authenticate(host, how):
    token = "eyJhbGciOiJIUzI1NiJ9." + "a" * 2500 + ".sig"  # longer than lws's own protocol-name buffer
    kwargs, url = {}, f"{host.ws_url}/"
    if how == "subprotocol":  # what the seed's browser client does: new WebSocket(url, "Bearer." + token)
        kwargs["subprotocols"] = ["Bearer." + token]
    elif how == "subprotocol_with_aurora":
        kwargs["subprotocols"] = ["aurora", "Bearer." + token]
    elif how == "authorization":
        kwargs["additional_headers"] = {"Authorization": "Bearer " + token}
    else:
        url += "?token=" + token
    with connect(url, open_timeout=5, **kwargs) as c:
        if how == "subprotocol":
            assert c.subprotocol == "Bearer." + token  # echoed, or a browser drops the socket
        elif how == "subprotocol_with_aurora":
            assert c.subprotocol == "aurora"
        c.send('{"type":"whoami"}')
        assert recv_json(c)["user"] == token


def test_client_address_behind_a_trusted_proxy(host, tmp_path):
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    with connect(f"{host.ws_url}/?user=p", additional_headers=forwarded) as c:  # no trusted proxies
        c.send('{"type":"whoami"}')
        assert recv_json(c)["addr"] == "127.0.0.1"
    h = AuroraHost.start(Path(require(HOST)), tmp_path, host_config(trusted_proxies=["127.0.0.0/8", "198.51.100.7"]))
    try:
        with connect(f"{h.ws_url}/?user=p", additional_headers=forwarded) as c:
            c.send('{"type":"whoami"}')
            assert recv_json(c)["addr"] == "203.0.113.9"  # the nearest address that is not a trusted proxy
        with connect(f"{h.ws_url}/?user=p") as c:
            c.send('{"type":"whoami"}')
            assert recv_json(c)["addr"] == "127.0.0.1"
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


def test_on_join_refusal(host):
    with ws(host) as c:
        c.send('{"type":"join","room":"forbidden"}')
        assert recv_json(c)["code"] == "join_denied"
        c.send('{"type":"join","room":"lobby"}')
        assert recv_json(c) == {"type": "joined", "room": "lobby"}


def test_send_from_plugin_thread_arrives_in_order(host):
    with ws(host) as c:
        c.send('{"type":"send_from_thread","n":2000}')
        seqs = [recv_json(c)["seq"] for _ in range(2000)]
        assert seqs == list(range(2000))


def test_call_on_service_is_ordered_with_broadcasts(host):
    with ws(host) as c:
        c.send('{"type":"join_via_worker"}')
        # seq 1 was broadcast before the join (queued by the same thread), seq 2 after.
        assert recv_json(c) == {"type": "ordered", "seq": 2}
        c.send('{"type":"echo","text":"nothing else came"}')
        assert recv_json(c) == {"type": "echo", "text": "nothing else came"}


def test_http_routes_sync_async_and_errors(host):
    r = http_request(host.port, "/probe/sync")
    assert (r.status, r.json()) == (200, {"sync": True})

    body = json.dumps({"hello": "from the test"}).encode()
    r = http_request(host.port, "/probe/async", method="POST", body=body,
                     headers={"Content-Type": "application/json"})
    assert r.status == 201
    assert r.body == body
    assert r.headers.get("x-probe") == "async"

    assert http_request(host.port, "/probe/async", method="POST", body=b"x" * 2048).status == 413
    assert http_request(host.port, "/probe/async").status == 405
    assert http_request(host.port, "/nothing/here").status == 404


def test_a_route_with_limits_of_its_own(host):
    """ABI 1.3 http_route_limits: /probe/big takes 8 KiB where the host's
    limit is 1 KiB; other routes keep the host's; a body over the route's
    limit is a 413 before the plugin sees it, declared or chunked."""
    body = bytes(range(256)) * 16  # 4 KiB: over the host's 1 KiB
    r = http_request(host.port, "/probe/big", method="POST", body=body)
    assert (r.status, r.body) == (201, body)
    assert http_request(host.port, "/probe/async", method="POST", body=body).status == 413
    assert http_request(host.port, "/probe/big", method="POST", body=b"x" * 8193).status == 413
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as s:
        s.sendall(b"POST /probe/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + b"".join(b"1000\r\n" + b"y" * 4096 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Limits for a route the plugin has not added, or out of range: refused.
    assert any("http_route_limits refused 4 of 4" in line for line in host.stderr_lines()), host.stderr_tail()
    assert host.running()


def test_plugin_metrics_and_hook_histogram(host):
    before = host.metrics().total("aurora_probe_deferred_total")
    with ws(host) as c:
        c.send('{"type":"defer_reply"}')
        recv_json(c)
    m = host.metrics()
    assert m.total("aurora_probe_deferred_total") == before + 1
    assert m.total("aurora_hook_duration_seconds_count", plugin="probe", hook="on_message") > 0


def test_log_lines_are_json_with_the_same_shape(host):
    lines = [json.loads(line) for line in host.stderr_lines() if line.strip()]
    assert lines, "the host wrote no log line"
    for entry in lines:
        assert {"ts", "level", "source", "msg"} <= entry.keys(), entry
    assert any(e["source"] == "host" and "listening on" in e["msg"] for e in lines)


def test_heartbeat_closes_a_peer_that_never_answers_pings(tmp_path):
    h = AuroraHost.start(Path(require(HOST)), tmp_path,
                         host_config(heartbeat={"ping_interval_s": 1, "timeout_s": 1}))
    try:
        silent = RawWebSocket(h.port, "/?user=mute", timeout=10.0)  # never answers a ping
        with ws(h, "user=alive") as live:  # the websockets client answers pings itself
            t0 = time.monotonic()
            frames, ended = silent.drain_until_closed(timeout=10.0)
            elapsed = time.monotonic() - t0
            assert ended in ("eof", "reset"), f"the silent peer was not closed ({ended})"
            assert any(op == 0x9 for op, _ in frames), "the host never pinged"
            silent.close()
            assert elapsed >= 1.0, f"closed after {elapsed:.2f} s: sooner than a ping interval"
            live.send('{"type":"echo","text":"still here"}')
            assert recv_json(live) == {"type": "echo", "text": "still here"}
            # Counted once, by its reason (not also as a client close).
            m = h.metrics()
            assert m.total("aurora_closes_total", reason="heartbeat") == 1, m.dump("aurora_closes")
            assert m.total("aurora_closes_total", reason="client") == 0, m.dump("aurora_closes")
    finally:
        assert h.stop() == (0, False), h.stderr_tail()


def test_env_overrides_and_version(tmp_path):
    out = subprocess.run([require(HOST), "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "ABI 1.3" in out.stdout

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(host_config()))
    env = dict(os.environ, AURORA_PORT="not-a-port")
    bad = subprocess.run([require(HOST), "--check-config", str(cfg)], capture_output=True, text=True,
                         env=env, timeout=30)
    assert bad.returncode == 2 and "AURORA_PORT" in bad.stderr

    env = dict(os.environ, AURORA_LOG_LEVEL="loud")
    bad = subprocess.run([require(HOST), "--check-config", str(cfg)], capture_output=True, text=True,
                         env=env, timeout=30)
    assert bad.returncode == 2 and "log.level" in bad.stderr

    port = free_port()
    env = dict(os.environ, AURORA_PORT=str(port))
    proc = subprocess.Popen([require(HOST), "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                if http_request(port, "/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.05)  # readiness poll, bounded by the deadline
        else:
            pytest.fail("host with AURORA_PORT override never answered /health")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_workers_share_one_port(tmp_path):
    h = AuroraHost.start(Path(require(HOST)), tmp_path, host_config(workers=2))
    try:
        children = subprocess.run(["pgrep", "-P", str(h.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2, children
        # Fresh connections are spread by the kernel (SO_REUSEPORT hashing):
        # within a bounded number of tries both processes answer.
        pids = set()
        for _ in range(200):
            pids.add(http_request(h.port, "/health").json()["pid"])
            if len(pids) == 2:
                break
        assert pids == {int(c) for c in children}
        with ws(h) as c:
            c.send('{"type":"echo","text":"via a worker"}')
            assert recv_json(c)["text"] == "via a worker"
    finally:
        code, killed = h.stop()
        assert (code, killed) == (0, False), h.stderr_tail()
    assert subprocess.run(["pgrep", "-P", str(h.pid)], capture_output=True).stdout == b""


def test_shutdown_grace_ends_even_if_a_client_never_reads(tmp_path):
    """A client that reads nothing cannot take its 1001 close frame: the host
    must still exit, shortly after shutdown_grace_ms, with code 0. (This
    bounds the drain; it did not reproduce the review's 20 s case, where the
    grace timer fired without waking the loop, on this machine.)"""
    h = AuroraHost.start(Path(require(HOST)), tmp_path, host_config(
        shutdown_grace_ms=500, limits={"send_queue_max_frames": 1000000, "send_queue_max_bytes": 1 << 30}))
    stuck = RawWebSocket(h.port, "/?user=stuck", rcvbuf=4096, timeout=10.0)
    stuck.send_json({"type": "send_from_thread", "n": 20000})  # fills its socket; it never reads
    with ws(h) as c:  # wait until the host has queued a good part of them
        c.send('{"type":"echo","text":"sync"}')
        recv_json(c)
    t0 = time.monotonic()
    h.terminate()
    code = h.wait(10)
    elapsed = time.monotonic() - t0
    stuck.close()
    assert code == 0, h.stderr_tail()
    assert elapsed < 3.0, f"exit took {elapsed:.1f} s with a 0.5 s grace"


@pytest.mark.parametrize("protocols", [["aurora.ndjson"], ["aurora.ndjson", "Bearer.tok"]])
def test_ndjson_clients_get_several_messages_per_frame(host, protocols):
    """Opt-in by subprotocol: frames waiting together leave as one frame,
    one JSON message per line, in order; nothing is lost."""
    url = f"{host.ws_url}/" if len(protocols) > 1 else f"{host.ws_url}/?user=nd"
    with connect(url, subprotocols=protocols, open_timeout=5) as c:
        assert c.subprotocol == "aurora.ndjson"
        # 3,000: under the default send_queue_max_frames (4,096) even if the
        # client reads nothing until the plugin thread is done.
        c.send('{"type":"send_from_thread","n":3000}')
        seqs, frames = [], 0
        while len(seqs) < 3000:
            frame = c.recv(timeout=10)
            frames += 1
            seqs += [json.loads(line)["seq"] for line in frame.split("\n")]
        assert seqs == list(range(3000))
        assert frames < 3000, "no frame carried more than one message"
    with ws(host) as plain:  # the seed's client (no subprotocol): one message per frame
        plain.send('{"type":"send_from_thread","n":200}')
        assert [recv_json(plain)["seq"] for _ in range(200)] == list(range(200))
