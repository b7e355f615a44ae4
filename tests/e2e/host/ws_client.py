"""Small wrappers over websockets' sync client for the e2e tests."""

from __future__ import annotations

import itertools
import json

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

RECV_TIMEOUT_S = 5.0
_tokens = itertools.count()


def connect(host, path: str = "/", **kw):
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 5)
    return ws_connect(host.ws_url + path, **kw)


def send_json(ws, obj) -> None:
    ws.send(json.dumps(obj, separators=(",", ":")))


def recv_json(ws, timeout: float = RECV_TIMEOUT_S, expect_close: bool = False) -> dict:
    try:
        frame = ws.recv(timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no frame within {timeout} s") from None
    except ConnectionClosed as e:
        if not expect_close:
            raise AssertionError(f"the server closed the connection instead of answering: {e}") from e
        raise
    assert isinstance(frame, str), f"expected a text frame, got {type(frame).__name__}: {frame[:100]!r}"
    return json.loads(frame)


def echo_round_trip(ws, timeout: float = RECV_TIMEOUT_S) -> None:
    """Sends an echo with a fresh token; the next frame must be its echo."""
    text = f"ping-{next(_tokens)}"
    send_json(ws, {"type": "echo", "text": text})
    reply = recv_json(ws, timeout)
    assert reply.get("type") == "echo" and reply.get("text") == text, \
        f"expected the echo of {text!r} as the next frame, got {reply}"
