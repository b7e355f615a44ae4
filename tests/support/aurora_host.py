"""Helpers for tests that run aurora-host as a process (tests/e2e, tests/host, ...).

- AuroraHost: one aurora-host child process on a free loopback port, started
  from a config dict, ready once GET /health answers 200, stopped with
  SIGTERM then SIGKILL.
- HTTP helpers (http.client, which sends the request target verbatim, so
  path-traversal attempts reach the server unnormalised) and a Prometheus
  scrape parsed with prometheus_client.
- A minimal WebSocket client on raw sockets (RFC 6455 framing, blocking and
  asyncio). The tests use the `websockets` package wherever it can do the
  job; the raw client exists for what it cannot or should not do: stop
  reading on purpose (slow consumer), and receive 4 million frames in a
  reasonable time (websockets' asyncio client reaches ~54k frames/s on this
  machine, this parser ~390k frames/s).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))

from real_servers import _child_setup, free_port  # noqa: E402

START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 10.0
POLL_INTERVAL_S = 0.02
START_ATTEMPTS = 3  # a free port can be taken between probe and bind

# aurora-host applies these over the config file; the tests own their config.
_ENV_OVERRIDES = ("AURORA_HOST", "AURORA_PORT", "AURORA_REDIS_URL", "AURORA_MONGO_URL",
                  "AURORA_JWT_SECRET", "AURORA_PLUGIN_PATH", "AURORA_LOG_LEVEL")


# Every host launched since the current test began (tests/conftest.py shows
# their log tails when the test fails, and clears the list before each test).
LAUNCHED: list["AuroraHost"] = []


class HostStartError(RuntimeError):
    pass


def build_dir() -> Path:
    return Path(os.environ.get("AURORA_BUILD_DIR") or REPO_ROOT / "build").resolve()


def tail(path: Path, max_lines: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = deque(f, maxlen=max_lines)
    except OSError as e:
        return f"    | (unreadable: {e})\n"
    return "".join("    | " + line.rstrip("\n") + "\n" for line in lines) or "    | (empty)\n"


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ---- HTTP -------------------------------------------------------------------

@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def http_request(port: int, target: str, method: str = "GET", headers: dict | None = None,
                 body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


@dataclass
class Metrics:
    """A parsed /metrics scrape: family names and samples by sample name."""
    text: str
    # name -> types: prometheus_client names a counter family without its
    # _total suffix, so a counter x_total and a gauge x share the name x.
    families: dict[str, set[str]] = field(default_factory=dict)
    samples: dict[str, list[tuple[dict, float]]] = field(default_factory=dict)

    def family_types(self, name: str) -> set[str]:
        short = name[:-len("_total")] if name.endswith("_total") else name
        return self.families.get(name, set()) | self.families.get(short, set())

    def has_family(self, name: str) -> bool:
        return bool(self.family_types(name))

    def total(self, sample_name: str, **labels) -> float:
        return sum(v for lab, v in self.samples.get(sample_name, [])
                   if all(lab.get(k) == want for k, want in labels.items()))

    def dump(self, prefix: str) -> str:
        return "\n".join(line for line in self.text.splitlines() if line.startswith(prefix))


def parse_metrics(text: str) -> Metrics:
    m = Metrics(text)
    for fam in text_string_to_metric_families(text):
        m.families.setdefault(fam.name, set()).add(fam.type)
        for s in fam.samples:
            m.samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    return m


# ---- the host process -------------------------------------------------------

class AuroraHost:
    """A running aurora-host. Use AuroraHost.start(); always call stop()."""

    def __init__(self, binary: Path, workdir: Path, config: dict, env: dict | None = None):
        self.binary = binary
        self.workdir = workdir
        self.config = config
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.stderr_path = workdir / "host.stderr"
        self.stdout_path = workdir / "host.stdout"
        self.config_path = workdir / "host.json"
        self.returncode: int | None = None
        self.stopped_by_test = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, binary: Path, workdir: Path, config: dict, env: dict | None = None) -> "AuroraHost":
        """`env`: variables for the host beyond the test's own environment
        (which never passes the host's overrides or server API keys)."""
        last = ""
        for attempt in range(START_ATTEMPTS):
            d = workdir / f"host-{attempt}" if attempt else workdir
            d.mkdir(parents=True, exist_ok=True)
            host = cls(binary, d, config, env)
            try:
                host._launch()
                return host
            except HostStartError as e:
                last = str(e)
                host.kill()
                # Retry only when the port was taken under us (exit code 1).
                if host.returncode != 1:
                    break
        raise HostStartError(last)

    def _launch(self) -> None:
        self.port = free_port()
        cfg = deep_merge(self.config, {"listen": {"host": "127.0.0.1", "port": self.port}})
        self.config_path.write_text(json.dumps(cfg, indent=2))
        env = {k: v for k, v in os.environ.items() if k not in _ENV_OVERRIDES and k != "AURORA_SERVER_API_KEYS"}
        env.update(self.env)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(self.binary), "--config", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, env=env, cwd=self.workdir, preexec_fn=_child_setup, close_fds=True)
        LAUNCHED.append(self)
        deadline = time.monotonic() + START_DEADLINE_S
        last_error = "no attempt"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise HostStartError(
                    f"aurora-host exited with code {rc} before GET /health answered; "
                    f"config {self.config_path}; stderr tail:\n{tail(self.stderr_path)}")
            try:
                if http_request(self.port, "/health", timeout=1.0).status == 200:
                    return
                last_error = "status != 200"
            except OSError as e:
                last_error = f"{type(e).__name__}: {e}"
            time.sleep(POLL_INTERVAL_S)  # readiness poll, bounded by the deadline
        raise HostStartError(
            f"aurora-host did not answer GET /health with 200 within {START_DEADLINE_S:.0f} s "
            f"(last: {last_error}); stderr tail:\n{tail(self.stderr_path)}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM, without waiting (the test measures the exit)."""
        self.stopped_by_test = True
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.returncode = self.proc.returncode

    def stop(self, deadline_s: float = STOP_DEADLINE_S) -> tuple[int, bool]:
        """SIGTERM, then SIGKILL after the deadline. Returns (exit code, killed)."""
        if self.proc is None:
            return (0, False)
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        self.returncode = self.proc.returncode
        return (self.returncode, killed)

    def stderr_tail(self, max_lines: int = 40) -> str:
        return tail(self.stderr_path, max_lines)

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text(errors="replace").splitlines()

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    # HTTP shortcuts
    def get(self, target: str, **kw) -> HttpResponse:
        return http_request(self.port, target, **kw)

    def metrics(self) -> Metrics:
        resp = self.get("/metrics")
        assert resp.status == 200, f"GET /metrics -> {resp.status} {resp.body[:200]!r}"
        return parse_metrics(resp.body.decode())


# ---- raw WebSocket framing ---------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())


def handshake_request(port: int, path: str = "/", extra_headers: str = "") -> tuple[bytes, bytes]:
    """`extra_headers`: zero or more "Name: value\\r\\n" lines."""
    key = base64.b64encode(os.urandom(16))
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{extra_headers}").encode()
    req += b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    return req, key


def check_handshake_response(head: bytes, key: bytes) -> None:
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == "101", f"upgrade refused: {lines[0]!r}"
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    assert headers.get("sec-websocket-accept", "").encode() == ws_accept(key), f"bad accept header: {headers}"


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    if n:
        pad = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")
    else:
        masked = b""
    return head + mask + masked


def text_frame(obj) -> bytes:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return encode_frame(OP_TEXT, data)


def close_code(payload: bytes) -> int | None:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


class FrameParser:
    """Parses unmasked server frames; reassembles fragmented messages."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._frag_op = None
        self._frag = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf
        buf += data
        out = []
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            assert not b1 & 0x80, "server frames must not be masked"
            length, hl = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, hl = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, hl = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            end = pos + hl + length
            if end > n:
                break
            op, fin, payload = b0 & 0x0F, bool(b0 & 0x80), bytes(buf[pos + hl:end])
            pos = end
            if op >= 0x8:  # control frames are never fragmented
                out.append((op, payload))
            elif op == OP_CONT:
                assert self._frag_op is not None, "continuation without a first fragment"
                self._frag += payload
                if fin:
                    out.append((self._frag_op, bytes(self._frag)))
                    self._frag_op, self._frag = None, bytearray()
            elif not fin:
                assert self._frag_op is None, "new message inside a fragmented one"
                self._frag_op, self._frag = op, bytearray(payload)
            else:
                out.append((op, payload))
        del buf[:pos]
        return out


class RawWebSocket:
    """A blocking WebSocket client on a plain socket, reading only when asked."""

    def __init__(self, port: int, path: str = "/", rcvbuf: int | None = None, timeout: float = 5.0,
                 extra_headers: str = ""):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the window advertised in the handshake is small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        req, key = handshake_request(port, path, extra_headers)
        self.sock.sendall(req)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: leave frames after the head unread
            if not chunk:
                raise ConnectionError(f"closed during the handshake; got {head!r}")
            head += chunk
        check_handshake_response(head, key)
        self.head = head.decode("latin-1")
        self.parser = FrameParser()
        self.pending: deque[tuple[int, bytes]] = deque()

    def send_json(self, obj) -> None:
        self.sock.sendall(text_frame(obj))

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin))

    def recv_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next frame; raises TimeoutError, or EOFError on a closed stream."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame")
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("connection closed by the server")
            self.pending.extend(self.parser.feed(data))
        return self.pending.popleft()

    def drain_until_closed(self, timeout: float) -> tuple[list[tuple[int, bytes]], str]:
        """Reads every frame until EOF or reset. Returns (frames, how it ended):
        'eof', 'reset' or 'timeout'."""
        frames = list(self.pending)
        self.pending.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return frames, "timeout"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return frames, "timeout"
            except ConnectionResetError:
                return frames, "reset"
            if not data:
                return frames, "eof"
            frames.extend(self.parser.feed(data))

    def close(self) -> None:
        self.sock.close()


class AsyncRawWebSocket:
    """An asyncio WebSocket client for receiving many small frames fast."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser()
        self.pending: deque[tuple[int, bytes]] = deque()

    @classmethod
    async def connect(cls, port: int, path: str = "/") -> "AsyncRawWebSocket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        req, key = handshake_request(port, path)
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        check_handshake_response(head, key)
        return cls(reader, writer)

    async def send_json(self, obj) -> None:
        self.writer.write(text_frame(obj))
        await self.writer.drain()

    async def read_frames(self) -> list[tuple[int, bytes]]:
        """Whatever complete frames the next read brings (pings are answered);
        [] at EOF."""
        if self.pending:
            out = list(self.pending)
            self.pending.clear()
            return out
        while True:
            data = await self.reader.read(1 << 20)
            if not data:
                return []
            frames = self.parser.feed(data)
            for op, payload in frames:
                if op == OP_PING:
                    self.writer.write(encode_frame(OP_PONG, payload))
            if frames:
                return frames

    async def recv_json(self) -> dict:
        while not self.pending:
            frames = await self.read_frames()
            if not frames:
                raise EOFError("connection closed by the server")
            self.pending.extend(f for f in frames if f[0] == OP_TEXT or f[0] == OP_CLOSE)
        op, payload = self.pending.popleft()
        if op == OP_CLOSE:
            raise EOFError(f"close frame {close_code(payload)}")
        return json.loads(payload)

    async def close(self) -> None:
        try:
            self.writer.write(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
