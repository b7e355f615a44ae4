"""The host where an attacker looks (docs/security.md): request and
connection handles that outlive their client, every HTTP method with and
without a body on every kind of route, messages of a client that closes
right after sending, frame budgets, bounds on what one connection may hold,
RFC 6455 close handling, tokens that belong to one request, forwarded
addresses.

The host runs with glibc's allocator made hostile to use-after-free
(tcache off, freed memory overwritten), so that a freed request written
through crashes the process instead of passing by luck; the ASan leg runs
the same tests with the sanitizer instead.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
import websockets
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import (OP_CLOSE, OP_TEXT, AuroraHost, RawWebSocket,  # noqa: E402
                         close_code, deep_merge, encode_frame, http_request, text_frame)
from probe_host import HOST, host_config, require  # noqa: E402

MAX_BODY = 1024
HOSTILE_MALLOC = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0", "MALLOC_PERTURB_": "165"}


def start(tmp_path, monkeypatch, **extra) -> AuroraHost:
    for k, v in HOSTILE_MALLOC.items():
        monkeypatch.setenv(k, v)
    return AuroraHost.start(Path(require(HOST)), tmp_path,
                            host_config(**deep_merge({"limits": {"http_max_body_bytes": MAX_BODY}}, extra)))


def stop_cleanly(h: AuroraHost) -> None:
    assert h.running(), f"the host died:\n{h.stderr_tail()}"
    assert h.stop() == (0, False), h.stderr_tail()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        h = start(tmp_path_factory.mktemp("hardening"), mp)
    finally:
        mp.undo()
    yield h
    stop_cleanly(h)


def wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # polling a condition, bounded by the deadline
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def raw_http(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes, returns everything until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        with contextlib.suppress(OSError):  # the server may have answered and closed already
            s.shutdown(socket.SHUT_WR)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        return data


def parse_responses(data: bytes, methods: list[str]) -> list[tuple[int, dict, bytes]]:
    """Splits pipelined HTTP/1.1 responses (content-length framed)."""
    out = []
    for method in methods:
        head_end = data.find(b"\r\n\r\n")
        assert head_end >= 0, f"incomplete response for {method}: {data[:300]!r}"
        lines = data[:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        data = data[head_end + 4:]
        n = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        out.append((status, headers, data[:n]))
        data = data[n:]
    assert data == b"", f"bytes after the last response: {data[:200]!r}"
    return out


# ---- HTTP: every method, with and without a body, on every kind of route ----

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TARGETS = {  # target -> statuses acceptable without a body (the host's own, plugin sync/async/held, static, none)
    "/health": {200},
    "/ready": {200},
    "/metrics": {200},
    "/probe/sync": {200, 404, 405},
    "/probe/async": {201, 404, 405},
    "/probe/held?ms=30": {200, 404},
    "/index.html": {404},
    "/no/such/route": {404},
}
BODIES = {"none": b"", "small": b"0123456789", "oversize": b"x" * (MAX_BODY * 3)}


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_method_and_body_on_every_route_kind(host, target):
    for method in METHODS:
        for body_kind, body in BODIES.items():
            what = f"{method} {target} with body {body_kind}"
            r = http_request(host.port, target, method=method, body=body or None,
                             headers={"Content-Length": str(len(body))} if body else {})
            if body_kind == "oversize":
                assert r.status == 413, f"{what}: {r.status} {r.body[:200]!r}"
            elif target in ("/health", "/ready", "/metrics") and method not in ("GET", "HEAD"):
                assert r.status == 405 and r.headers["allow"] == "GET, HEAD", f"{what}: {r.status}"
            elif body_kind == "small" and method in ("GET", "HEAD") and not target.startswith("/probe/"):
                # /health etc. answer and close; static GET with a body is refused.
                assert r.status in TARGETS[target] | {400}, f"{what}: {r.status} {r.body[:200]!r}"
            else:
                assert r.status in TARGETS[target] | {400}, f"{what}: {r.status} {r.body[:200]!r}"
            if method == "HEAD":
                assert r.body == b"", f"{what}: HEAD answered with a body {r.body[:100]!r}"
            if target.startswith("/probe/held") and r.status == 200 and method != "HEAD":
                assert r.json()["body_len"] == len(body), f"{what}: {r.body!r}"
            assert host.running(), f"{what} killed the host:\n{host.stderr_tail()}"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "QUERY", "PROPFIND", "FOO", "get"])
def test_a_method_no_route_takes_is_405_in_json(host, method):
    """lws would answer these with an HTML 403: the front door answers 405
    in JSON, with the methods there are."""
    for target in ("/health", "/probe/sync", "/no/such/route"):
        data = raw_http(host.port, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert data.startswith(b"HTTP/1.1 405 "), data[:200]
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head and json.loads(body)["error"], data
        assert b"allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" in head
    assert http_request(host.port, "/health").status == 200 and host.running()


def test_oversized_body_on_a_get_route_held_by_a_worker(host):
    """The red-team crash: a GET route whose handler hands the request to a
    worker, with a Content-Length over http_max_body_bytes. The request is
    answered 413 before any plugin sees it, and nothing is freed under the
    worker."""
    for _ in range(20):
        r = http_request(host.port, "/probe/held?ms=50", method="GET", body=b"y" * (MAX_BODY + 1),
                         headers={"Content-Length": str(MAX_BODY + 1)})
        assert r.status == 413, (r.status, r.body)
    # A body larger than it said (the header lies low): the extra bytes are
    # never read as a request, whatever the method.
    for method in ("GET", "POST", "DELETE"):
        data = raw_http(host.port, (f"{method} /probe/held?ms=50 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                                    "12345GET /health HTTP/1.1\r\nHost: x\r\n\r\n").encode())
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
    r = http_request(host.port, "/probe/held?ms=0")  # the worker has drained its queue
    assert r.status == 200 and host.running(), host.stderr_tail()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_body", [False, True], ids=["no_body", "body"])
def test_request_held_by_a_plugin_outlives_its_client(host, method, with_body):
    """The client leaves while a plugin thread still holds its request: the
    plugin reads every getter and replies later; the reply goes nowhere."""
    body = b"z" * 100 if with_body else b""
    head = f"{method} /probe/held?ms=150 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", host.port), timeout=5)
        s.sendall(head + body)
        s.close()  # before the worker answers
    r = http_request(host.port, "/probe/held?ms=0", timeout=10)  # queued behind the held ones: they are done
    assert r.status == 200, (r.status, r.body)
    assert host.running(), host.stderr_tail()


def test_head_has_no_body_and_pipelining_stays_in_step(host):
    for target in ("/health", "/metrics", "/probe/sync", "/probe/held?ms=0", "/no/such"):
        req = f"HEAD {target} HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        responses = parse_responses(raw_http(host.port, req.encode()), ["HEAD", "GET"])
        (st1, h1, b1), (st2, _, b2) = responses
        assert b1 == b"" and st2 == 200 and json.loads(b2)["status"] == "ok", (target, responses)
        assert int(h1.get("content-length", "0")) >= 0


def test_slow_body_gets_408(tmp_path, monkeypatch):
    h = start(tmp_path, monkeypatch, limits={"http_body_timeout_ms": 500})
    try:
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as s:
            s.sendall(b"POST /probe/async HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            t0 = time.monotonic()
            answer = b""
            for _ in range(40):  # one byte every 100 ms: each read resets lws's own idle timer
                try:
                    s.sendall(b"a")
                except OSError:
                    break
                s.settimeout(0.1)
                try:
                    answer += s.recv(4096)
                except socket.timeout:
                    continue
                if answer:
                    break
            took = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert took < 3.0, f"408 after {took:.1f} s with http_body_timeout_ms 500"
        assert h.metrics().total("aurora_http_slow_bodies_total") == 1
    finally:
        stop_cleanly(h)


# ---- messages of a client that closes right after sending ----

def hook_count(h: AuroraHost, plugin: str, hook: str) -> float:
    return h.metrics().total("aurora_hook_duration_seconds_count", plugin=plugin, hook=hook)


def test_messages_of_a_client_that_closes_are_processed_to_the_end(host):
    """5 messages held PENDING by a plugin thread for 300 ms, the client
    closes at once: each still reaches the next plugin (echo), and
    on_disconnect runs only after them."""
    before_echo = hook_count(host, "echo", "on_message")
    before_disc = hook_count(host, "probe", "on_disconnect")
    ws = RawWebSocket(host.port, "/?user=leaver")
    for i in range(5):
        ws.send_json({"type": "echo", "defer": True, "hold_ms": 300, "text": f"m{i}"})
    ws.send_frame(OP_CLOSE, struct.pack("!H", 1000))
    ws.close()
    wait_for(lambda: hook_count(host, "echo", "on_message") >= before_echo + 5, "the 5 messages to reach echo")
    wait_for(lambda: hook_count(host, "probe", "on_disconnect") >= before_disc + 1, "on_disconnect")
    assert hook_count(host, "echo", "on_message") == before_echo + 5
    wait_for(lambda: host.metrics().total("aurora_connections") == 0, "the connection to be forgotten")


def test_messages_of_a_connection_reset_mid_pipeline_are_processed(host):
    """Read by the host, then the client resets (no close frame). (Bytes the
    host had not read yet when the RST came are the kernel's to discard.)"""
    before = hook_count(host, "echo", "on_message")
    frames_before = host.metrics().total("aurora_frames_in_total")
    socks = []
    for k in range(5):
        ws = RawWebSocket(host.port, f"/?user=r{k}")
        for i in range(3):
            ws.send_json({"type": "echo", "defer": True, "hold_ms": 100, "text": f"{k}-{i}"})
        socks.append(ws)
    wait_for(lambda: host.metrics().total("aurora_frames_in_total") >= frames_before + 15, "the host to read them")
    for ws in socks:  # no close frame: a reset
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.close()
    wait_for(lambda: hook_count(host, "echo", "on_message") >= before + 15, "15 messages to reach echo")


# ---- budgets and bounds ----

def recv_all(c, n: int, timeout: float = 5.0) -> list[dict]:
    return [json.loads(c.recv(timeout=timeout)) for _ in range(n)]


def test_join_flood_is_rate_limited(host):
    with connect(f"{host.ws_url}/?user=flooder", open_timeout=5) as c:
        for i in range(30):
            c.send(json.dumps({"type": "join", "room": f"r{i}", "ref": i}))
        replies = recv_all(c, 30)
        limited = [r for r in replies if r["type"] == "rate_limited"]
        assert len(limited) >= 5, replies  # burst 20 at 5/s: about 10 of 30 refused
        assert all(r["limit"] == "frames:join" and r["retry_after_ms"] > 0 and "ref" in r for r in limited), limited
    assert host.metrics().total("aurora_frames_refused_total") >= 5


def test_client_that_keeps_flooding_is_closed_with_1008(tmp_path, monkeypatch):
    """limits.frames_burst (10 here) refusals in a row close the connection,
    after the 10 rate_limited answers already queued (they say why).
    The flood stops right at the threshold so that the host has read every
    byte when it closes (else the kernel answers the rest with a reset)."""
    h = start(tmp_path, monkeypatch, limits={"frames_burst": 10, "frames_per_s": 1000,
                                             "frame_budgets": {"join": {"per_s": 1, "burst": 2}}})
    try:
        with connect(f"{h.ws_url}/?user=flooder", open_timeout=5) as c:
            for i in range(13):  # 2 accepted, then 11 refused in a row: the 11th closes
                c.send(json.dumps({"type": "join", "room": "x"}))
            got = []
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                for _ in range(20):
                    got.append(json.loads(c.recv(timeout=5)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, repr(closed.value)
            assert [f["type"] for f in got].count("rate_limited") == 10, got
        assert h.metrics().total("aurora_closes_total", reason="flood") == 1
    finally:
        stop_cleanly(h)


def test_a_flood_read_in_one_go_still_gets_its_answers_before_the_close(tmp_path, monkeypatch):
    """The same flood in one TCP write: the host reads it whole and closes in
    the same pass, so the answers are still queued at the close. They go out
    before the close frame (they used to be dropped, and the client saw only
    1008: the rooms flood test failed so on a loaded machine)."""
    h = start(tmp_path, monkeypatch, limits={"frames_burst": 10, "frames_per_s": 1000,
                                             "frame_budgets": {"join": {"per_s": 1, "burst": 2}}})
    try:
        ws = RawWebSocket(h.port, "/?user=flooder")
        try:
            ws.sock.sendall(b"".join(text_frame({"type": "join", "room": "x", "ref": i}) for i in range(13)))
            frames, how = ws.drain_until_closed(5)
        finally:
            ws.close()
        texts = [json.loads(p) for op, p in frames if op == OP_TEXT]
        closes = [p for op, p in frames if op == OP_CLOSE]
        # 2 joins served, then 10 refusals answered (the join budget's with their
        # ref; the last two also overdraw the connection's bucket of 10, which
        # answers before the frame is parsed, so without one), then the close.
        limited = [t for t in texts if t["type"] == "rate_limited"]
        assert len(limited) == 10 and [t["ref"] for t in texts if t["type"] == "joined"] == [0, 1], json.dumps(texts)
        assert len(closes) == 1 and close_code(closes[0]) == 1008, (closes, how)
        assert frames[-1][0] == OP_CLOSE, frames  # nothing after the close
    finally:
        stop_cleanly(h)


def test_every_frame_counts_against_the_budget(tmp_path, monkeypatch):
    """Malformed frames spend from the budget like any other (a refill of 1/s
    keeps the count exact even on a slow, instrumented build)."""
    h = start(tmp_path, monkeypatch, limits={"frames_burst": 20, "frames_per_s": 1})
    try:
        with connect(f"{h.ws_url}/?user=garbage", open_timeout=5) as c:
            for _ in range(30):
                c.send("not json")
            replies = [json.loads(c.recv(timeout=5)) for _ in range(30)]
        codes = [r.get("code") or r.get("limit") for r in replies]
        assert codes[:20] == ["bad_json"] * 20, codes
        assert codes.count("frames") >= 8 and set(codes[20:]) <= {"bad_json", "frames"}, codes
    finally:
        stop_cleanly(h)


def test_pending_messages_per_connection_are_bounded(tmp_path, monkeypatch):
    h = start(tmp_path, monkeypatch, limits={"max_pending_per_conn": 4})
    try:
        with connect(f"{h.ws_url}/?user=p", open_timeout=5) as c:
            for i in range(10):
                c.send(json.dumps({"type": "defer_reply", "hold_ms": 300, "ref": i}, separators=(",", ":")))
            replies = recv_all(c, 10)
            busy = [r for r in replies if r.get("code") == "busy"]
            assert len(busy) == 6 and sorted(r["ref"] for r in busy) == list(range(4, 10)), replies
            assert sum(r["type"] == "deferred" for r in replies) == 4, replies
            c.send(json.dumps({"type": "defer_reply"}))  # room again once they are answered
            assert json.loads(c.recv(timeout=5))["type"] == "deferred"
        assert h.metrics().total("aurora_pending_refused_total") == 6
    finally:
        stop_cleanly(h)


def test_connection_cap(tmp_path, monkeypatch):
    h = start(tmp_path, monkeypatch, limits={"max_connections": 3})
    try:
        with contextlib.ExitStack() as stack:
            # Each handshake has completed, so each counts (an HTTP request would too).
            held = [stack.enter_context(connect(f"{h.ws_url}/?user=u{i}", open_timeout=5)) for i in range(3)]
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                connect(f"{h.ws_url}/?user=extra", open_timeout=5)
            assert refused.value.response.status_code == 503
            assert b"connection limit" in refused.value.response.body
            held[0].close()
            with wait_for(lambda: _try_connect(h), "a slot after one connection closed"):
                pass
        assert h.metrics().total("aurora_connections_refused_total") >= 1
    finally:
        stop_cleanly(h)


def _try_connect(h):
    try:
        return connect(f"{h.ws_url}/?user=late", open_timeout=5)
    except websockets.exceptions.InvalidStatus:
        return None


# ---- RFC 6455: close frames and protocol errors ----

def close_and_read(ws: RawWebSocket, frame: bytes, timeout: float = 3.0):
    ws.sock.sendall(frame)
    t0 = time.monotonic()
    frames, how = ws.drain_until_closed(timeout)
    return [f for f in frames if f[0] == OP_CLOSE], how, time.monotonic() - t0


CLOSE_CASES = {
    "one_byte_payload": (b"\x03", 1002),
    "code_5000": (struct.pack("!H", 5000), 1002),
    "code_65535": (struct.pack("!H", 65535), 1002),
    "code_1005_reserved": (struct.pack("!H", 1005), 1002),
    "code_999": (struct.pack("!H", 999), 1002),
    "code_2000_reserved": (struct.pack("!H", 2000), 1002),
    "bad_utf8_reason": (struct.pack("!H", 1000) + b"\xff\xfe", 1002),
    "normal_1000": (struct.pack("!H", 1000) + b"bye", 1000),
    "app_4001": (struct.pack("!H", 4001), 4001),
}


@pytest.mark.parametrize("case", list(CLOSE_CASES))
def test_close_frames_are_checked(host, case):
    payload, expected = CLOSE_CASES[case]
    ws = RawWebSocket(host.port, "/?user=closer")
    try:
        closes, how, took = close_and_read(ws, encode_frame(OP_CLOSE, payload))
    finally:
        ws.close()
    assert len(closes) == 1, (closes, how)
    assert close_code(closes[0][1]) == expected, (case, closes)
    assert how in ("eof", "reset") and took < 1.0, f"TCP close {how} after {took:.2f} s"


def test_empty_close_is_answered_with_an_empty_close(host):
    ws = RawWebSocket(host.port, "/?user=closer")
    try:
        closes, how, took = close_and_read(ws, encode_frame(OP_CLOSE, b""))
    finally:
        ws.close()
    assert closes == [(OP_CLOSE, b"")] and how in ("eof", "reset") and took < 1.0, (closes, how, took)


def test_each_ping_gets_its_pong_in_order_with_data(host):
    """Three pings in flight around a request: three pongs, each with its
    payload, and the reply to the request between the first two, as sent."""
    ws = RawWebSocket(host.port, "/?user=pinger")
    try:
        ws.sock.sendall(encode_frame(0x9, b"p1") + text_frame({"type": "echo", "text": "between"}) +
                        encode_frame(0x9, b"p2") + encode_frame(0x9, b"p3"))
        got = [ws.recv_frame() for _ in range(4)]
    finally:
        ws.close()
    assert got == [(0xA, b"p1"), (OP_TEXT, b'{"type":"echo","text":"between"}'), (0xA, b"p2"), (0xA, b"p3")], got


def test_long_extensions_header_still_upgrades(host):
    """lws 4.1 dropped a handshake whose Sec-WebSocket-Extensions was over
    255 bytes without a word; the host reads the head itself."""
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    req = (b"GET /?user=ext HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
           b"Sec-WebSocket-Extensions: " + b", ".join([b"x-unknown-extension; param=1"] * 20) + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as s:
        s.sendall(req)
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example accept value


def test_upgrade_refusals_are_complete_http_responses(host):
    base = (b"GET /?user=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
    cases = {
        "no_version": (base + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 426),
        "old_version": (base + b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 426),
        "bad_key": (base + b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", 400),
        "wrong_path": (base.replace(b"GET /?", b"GET /nope?") +
                       b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 404),
    }
    for name, (req, status) in cases.items():
        data = raw_http(host.port, req)
        assert data.startswith(f"HTTP/1.1 {status}".encode()), (name, data[:200])
        head, _, body = data.partition(b"\r\n\r\n")
        assert json.loads(body)["error"], (name, data)


PROTOCOL_ERRORS = {
    "rsv1_set": bytes([0x80 | 0x40 | OP_TEXT]) + encode_frame(OP_TEXT, b'{"type":"echo"}')[1:],
    "bad_opcode": bytes([0x80 | 0x3]) + encode_frame(OP_TEXT, b"x")[1:],
    "continuation_without_start": encode_frame(0x0, b"x"),
    "fragmented_ping": bytes([0x09]) + encode_frame(0x9, b"p")[1:],
    "unmasked": bytes([0x81, 0x02]) + b"{}",
    "control_over_125_bytes": encode_frame(0x9, b"p" * 126),
    "new_message_inside_fragmented": encode_frame(OP_TEXT, b"a", fin=False) + encode_frame(OP_TEXT, b"b"),
}


@pytest.mark.parametrize("case", list(PROTOCOL_ERRORS))
def test_protocol_error_closes_promptly_with_1002(host, case):
    ws = RawWebSocket(host.port, "/?user=broken")
    try:
        closes, how, took = close_and_read(ws, PROTOCOL_ERRORS[case], timeout=4.0)
    finally:
        ws.close()
    assert closes and close_code(closes[0][1]) == 1002, (case, closes, how)
    assert how in ("eof", "reset") and took < 1.0, f"{case}: TCP close {how} after {took:.2f} s (lws waits 5 s)"


# ---- identity: tokens and addresses ----

def test_bearer_token_belongs_to_the_request_that_carried_it(host):
    """A plain request carrying a Bearer subprotocol, then an upgrade with no
    token on the same keep-alive connection: never the first request's user.
    (The host serves upgrades only as a connection's first request: 400.)"""
    req1 = b"GET /health HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: Bearer.mallory\r\n\r\n"
    req2 = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as s:
        s.sendall(req1)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        s.sendall(req2)
        second = b""
        while b"\r\n\r\n" not in second:
            chunk = s.recv(65536)
            if not chunk:
                break
            second += chunk
    assert second.startswith(b"HTTP/1.1 400"), second[:300]
    assert b"first request" in second and b"mallory" not in second


def test_forwarded_for_must_be_an_address(tmp_path, monkeypatch):
    h = start(tmp_path, monkeypatch, trusted_proxies=["127.0.0.1"])
    try:
        for forwarded, expected in (("not-an-ip", "127.0.0.1"), ("203.0.113.9", "203.0.113.9"),
                                    ("203.0.113.9, <script>", "127.0.0.1"), ("2001:db8::1", "2001:db8::1")):
            with connect(f"{h.ws_url}/?user=p", open_timeout=5,
                         additional_headers={"X-Forwarded-For": forwarded}) as c:
                c.send('{"type":"whoami"}')
                assert json.loads(c.recv(timeout=5))["addr"] == expected, forwarded
    finally:
        stop_cleanly(h)


def test_normal_traffic_logs_no_errors(tmp_path, monkeypatch):
    h = start(tmp_path, monkeypatch)
    try:
        for i in range(5):
            with connect(f"{h.ws_url}/", open_timeout=5, subprotocols=[f"Bearer.user{i}"]) as c:
                c.send('{"type":"echo","text":"hi"}')
                assert json.loads(c.recv(timeout=5))["text"] == "hi"
            assert http_request(h.port, "/health").status == 200
    finally:
        stop_cleanly(h)
    errors = [ln for ln in h.stderr_lines() if '"level":"error"' in ln]
    assert not errors, errors
