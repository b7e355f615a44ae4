"""permessage-deflate (RFC 7692) through a real aurora-host: what the host
answers to each offer, a broadcast compressed once for all its recipients,
clients with and without compression in one room, ndjson batches, client
messages inflated (over max_frame_bytes once inflated: too_large and the
connection stays, as uncompressed; a decompression bomb past the hard limit
closes 1009, garbage 1007), the setting that turns it off, and an extensions header too long to take.

The probe fixture plugin broadcasts {"type":"shout",...} to room "shouts";
echo (JSON mode) joins rooms."""

from __future__ import annotations

import json
import socket
import struct
import sys
import zlib
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

from aurora_host import (OP_CLOSE, OP_TEXT, AuroraHost, RawWebSocket, close_code, encode_frame,  # noqa: E402
                         handshake_request)
from probe_host import HOST, host_config, require  # noqa: E402

PMD = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"  # what browsers offer


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = AuroraHost.start(Path(require(HOST)), tmp_path_factory.mktemp("deflate-host"), host_config())
    yield h
    assert h.stop() == (0, False), h.stderr_tail()


def upgrade_head(port: int, extra_headers: str) -> str:
    """The response head to an upgrade with `extra_headers`, or what came before EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req, _ = handshake_request(port, "/?user=neg", extra_headers)
        s.sendall(req)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.decode("latin-1")


def extensions_of(head: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-extensions":
            return value.strip()
    return None


def read_frame(ws: RawWebSocket, timeout: float = 5.0) -> tuple[int, bytes]:
    """One whole server frame with its first byte (FIN, RSV1, opcode)."""
    buf = b""
    ws.sock.settimeout(timeout)

    def need(n: int) -> None:
        nonlocal buf
        while len(buf) < n:
            chunk = ws.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            buf += chunk

    need(2)
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        need(4)
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        need(10)
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    need(at + n)
    assert len(buf) == at + n, "one frame at a time in these tests"
    return buf[0], buf[at:at + n]


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


@pytest.mark.parametrize("offer, answer", [
    ("permessage-deflate; client_max_window_bits",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_no_context_takeover"),
    ("x-webkit-deflate-frame, permessage-deflate; unknown=1, permessage-deflate",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=16", None),
    ("deflate-frame", None),
])
def test_each_offer_gets_the_answer_rfc_7692_asks_for(host, offer, answer):
    head = upgrade_head(host.port, f"Sec-WebSocket-Extensions: {offer}\r\n")
    assert head.startswith("HTTP/1.1 101"), head
    assert extensions_of(head) == answer


def test_an_extensions_header_too_long_gets_an_http_answer(host):
    # 300 bytes (lws's 255-byte limit once dropped the socket without a word): taken.
    offer = "permessage-deflate; client_max_window_bits, " + ", ".join(f"x-ext-{i}" for i in range(40))
    assert len(offer) > 255
    head = upgrade_head(host.port, f"Sec-WebSocket-Extensions: {offer}\r\n")
    assert head.startswith("HTTP/1.1 101") and extensions_of(head), head
    # Past the head limit: an HTTP error, never a silent close.
    head = upgrade_head(host.port, f"Sec-WebSocket-Extensions: {'x' * 20000}\r\n")
    assert head.startswith("HTTP/1.1 4"), head


def test_a_broadcast_is_compressed_once_for_all_its_recipients(host):
    text = "a chat message that repeats itself, " * 12
    before = host.metrics()
    zipped = [RawWebSocket(host.port, f"/?user=z{i}", extra_headers=PMD) for i in range(12)]
    plain = [RawWebSocket(host.port, f"/?user=p{i}") for i in range(3)]
    try:
        for ws in zipped + plain:
            ws.send_json({"type": "join", "room": "shouts"})
            assert json.loads(read_frame(ws)[1])["type"] == "joined"
        zipped[0].send_json({"type": "shout", "text": text})
        payloads = set()
        for ws in zipped:
            b0, payload = read_frame(ws)
            assert b0 == 0x80 | 0x40 | OP_TEXT, hex(b0)  # FIN, RSV1 (compressed), text
            payloads.add(payload)
            assert json.loads(inflate(payload)) == {"type": "shout", "text": text}
        assert len(payloads) == 1  # the same bytes for everyone
        for ws in plain:
            b0, payload = read_frame(ws)
            assert b0 == 0x80 | OP_TEXT and json.loads(payload)["text"] == text
        after = host.metrics()
        runs = after.total("aurora_compressions_total") - before.total("aurora_compressions_total")
        assert runs == 1, "compressed once, not once per recipient"
        out_before = (after.total("aurora_compression_bytes_total", direction="out", stage="before")
                      - before.total("aurora_compression_bytes_total", direction="out", stage="before"))
        out_after = (after.total("aurora_compression_bytes_total", direction="out", stage="after")
                     - before.total("aurora_compression_bytes_total", direction="out", stage="after"))
        assert out_before == 12 * len(json.dumps({"type": "shout", "text": text}, separators=(",", ":")))
        assert out_after == 12 * len(payloads.pop()) and out_after * 5 < out_before
    finally:
        for ws in zipped + plain:
            ws.close()


def test_small_frames_go_uncompressed(host):
    ws = RawWebSocket(host.port, "/?user=small", extra_headers=PMD)
    try:
        ws.send_json({"type": "echo", "text": "hi"})
        b0, payload = read_frame(ws)
        assert b0 == 0x80 | OP_TEXT and json.loads(payload) == {"type": "echo", "text": "hi"}
    finally:
        ws.close()


def test_client_messages_are_inflated(host):
    with connect(f"{host.ws_url}/?user=py", open_timeout=5) as ws:  # websockets compresses by default
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        for text in ["x" * 5000, "\u00e9t\u00e9 " * 300, "short"]:
            ws.send(json.dumps({"type": "echo", "text": text, "ref": 1}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "echo", "text": text, "ref": 1}
    m = host.metrics()
    assert m.total("aurora_compression_bytes_total", direction="in", stage="before") > \
        m.total("aurora_compression_bytes_total", direction="in", stage="after") > 0


def test_fragmented_compressed_message(host):
    ws = RawWebSocket(host.port, "/?user=frag", extra_headers=PMD)
    try:
        z = deflate(json.dumps({"type": "echo", "text": "fragments " * 50}).encode())
        ws.send_frame(0x40 | OP_TEXT, z[:10], fin=False)  # RSV1 on the first frame only
        ws.send_frame(0x0, z[10:20], fin=False)
        ws.send_frame(0x0, z[20:], fin=True)
        b0, payload = read_frame(ws)
        assert json.loads(inflate(payload) if b0 & 0x40 else payload)["text"] == "fragments " * 50
    finally:
        ws.close()


MAX_FRAME = 64 * 1024  # limits.max_frame_bytes by default; the hard limit is 1 MiB


def too_large_then_fine(ws) -> None:
    """Over max_frame_bytes once inflated, under the hard limit: answered
    too_large like an uncompressed one, and the connection carries on."""
    ws.send(json.dumps({"type": "echo", "text": "y" * (MAX_FRAME + 1000), "ref": "big"}))
    reply = json.loads(ws.recv(timeout=5))
    assert (reply["type"], reply["code"]) == ("error", "too_large"), reply
    for i in range(3):
        ws.send(json.dumps({"type": "echo", "text": "still here", "ref": i}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "echo", "text": "still here", "ref": i}


def test_too_large_once_inflated_is_an_error_not_a_close(host):
    with connect(f"{host.ws_url}/?user=big", open_timeout=5) as ws:  # websockets compresses by default
        too_large_then_fine(ws)


def test_inflation_is_charged_to_the_frame_budget(host):
    """A small message that inflates past max_frame_bytes (under the hard
    limit) is refused too_large, but the inflation it cost is charged to the
    connection's frame budget (one frame per max_frame_bytes inflated): a
    client cannot make the host inflate ~1000x what it sends, 100 times a
    second. Default budget: 100 frames/s, burst 200; 900 KiB costs 15."""
    z = deflate(json.dumps({"type": "echo", "text": "a" * (900 * 1024)}).encode())
    assert len(z) < 2048
    ws = RawWebSocket(host.port, "/?user=inflater", extra_headers=PMD)
    try:
        for _ in range(20):
            ws.send_frame(0x40 | OP_TEXT, z)
        replies = []
        for _ in range(20):
            op, payload = ws.recv_frame(timeout=5)  # replies under min_bytes: plain text frames
            assert op == OP_TEXT, (op, payload)
            replies.append(json.loads(payload))
        kinds = [r.get("code") or r["type"] for r in replies]
        assert kinds[0] == "too_large", kinds
        assert "rate_limited" in kinds and kinds.count("too_large") <= 14, kinds
    finally:
        ws.close()


@pytest.mark.parametrize("payload, code", [
    (deflate(b"\0" * (8 << 20)), 1009),  # 8 MiB of zeros in ~8 KiB: past the hard limit once inflated
    (b"\xff\xff\xff\xff not deflate", 1007),
    (deflate(b"\xff\xfe not utf-8"), 1007),
])
def test_bad_compressed_messages_close_the_connection(host, payload, code):
    ws = RawWebSocket(host.port, "/?user=bomb", extra_headers=PMD)
    try:
        ws.send_frame(0x40 | OP_TEXT, payload)
        op, body = ws.recv_frame(timeout=5)
        assert (op, close_code(body)) == (OP_CLOSE, code), body
    finally:
        ws.close()


def test_rsv1_without_negotiation_is_a_protocol_error(host):
    ws = RawWebSocket(host.port, "/?user=norsv")
    try:
        ws.send_frame(0x40 | OP_TEXT, deflate(b'{"type":"echo","text":"x"}'))
        op, body = ws.recv_frame(timeout=5)
        assert (op, close_code(body)) == (OP_CLOSE, 1002)
    finally:
        ws.close()


def test_ndjson_batches_are_compressed_for_their_connection(host):
    ws = RawWebSocket(host.port, "/?user=nd", extra_headers=PMD + "Sec-WebSocket-Protocol: aurora.ndjson\r\n")
    try:
        frames = b"".join(encode_frame(OP_TEXT, json.dumps({"type": "echo", "text": "batch " * 30, "ref": i}).encode())
                          for i in range(20))
        ws.sock.sendall(frames)  # answers queued in one loop turn leave as batches
        got = []
        while len(got) < 20:
            b0, payload = read_frame(ws)
            got += (inflate(payload) if b0 & 0x40 else payload).decode().split("\n")
        assert [json.loads(line)["ref"] for line in got] == list(range(20))
    finally:
        ws.close()


def test_compression_can_be_turned_off_and_context_takeover_on(tmp_path):
    h = AuroraHost.start(Path(require(HOST)), tmp_path / "off", host_config(compression={"enabled": False}))
    try:
        assert extensions_of(upgrade_head(h.port, PMD)) is None
    finally:
        assert h.stop() == (0, False), h.stderr_tail()
    h = AuroraHost.start(Path(require(HOST)), tmp_path / "keep",
                         host_config(compression={"client_context_takeover": True, "min_bytes": 0}))
    try:
        assert extensions_of(upgrade_head(h.port, PMD)) == "permessage-deflate; server_no_context_takeover"
        with connect(f"{h.ws_url}/?user=keep", open_timeout=5) as ws:  # the client keeps its window
            for i in range(5):
                ws.send(json.dumps({"type": "echo", "text": "the same text again", "ref": i}))
                assert json.loads(ws.recv(timeout=5))["ref"] == i
            too_large_then_fine(ws)  # the refused message was inflated all the same: the window stays in step
    finally:
        assert h.stop() == (0, False), h.stderr_tail()
