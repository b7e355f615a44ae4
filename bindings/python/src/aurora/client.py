"""A small synchronous WebSocket client speaking Aurora's protocol
(docs/protocol.md), over ``websockets.sync``.

    with aurora.client.connect(host.ws_url, token) as c:
        c.join("lobby")
        c.send("hello", room="lobby")
        msg = c.receive(type="message", timeout=5)
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _ws_connect

__all__ = ["Client", "connect"]

Frame = dict[str, Any]


class Client:
    """One connection. Frames that a receive() skips are kept for later ones."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.backlog: list[Frame] = []

    def send_frame(self, frame: Frame) -> None:
        self.ws.send(json.dumps(frame))

    def send(self, text: str, *, room: str | None = None, ref: str | int | None = None) -> None:
        """A chat message (``{"type":"message","room":..,"text":..}``)."""
        frame: Frame = {"type": "message", "text": text}
        if room is not None:
            frame["room"] = room
        if ref is not None:
            frame["ref"] = ref
        self.send_frame(frame)

    def join(self, room: str) -> None:
        self.send_frame({"type": "join", "room": room})

    def leave(self, room: str) -> None:
        self.send_frame({"type": "leave", "room": room})

    def resume(self, room: str, since: str, ref: str | int | None = None) -> None:
        frame: Frame = {"type": "resume", "room": room, "since": since}
        if ref is not None:
            frame["ref"] = ref
        self.send_frame(frame)

    def receive(self, type: str | None = None, *, where: Callable[[Frame], bool] | None = None,
                timeout: float = 5.0) -> Frame:
        """The next frame (of ``type``, matching ``where``); TimeoutError after ``timeout`` s."""
        def wanted(f: Frame) -> bool:
            return (type is None or f.get("type") == type) and (where is None or where(f))

        for old in self.backlog:
            if wanted(old):
                self.backlog.remove(old)
                return old
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                f: Frame = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                raise TimeoutError(f"no {type or 'frame'} within {timeout} s; skipped: {self.backlog[-5:]}") from None
            if wanted(f):
                return f
            self.backlog.append(f)

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str, token: str | None = None, *, timeout: float = 10.0, query_token: bool = False) -> Client:
    """Connects with the token as subprotocol ``Bearer.<jwt>`` (as the web
    client does), or as ``?token=`` when ``query_token``."""
    if token and query_token:
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}token={token}"
        protocols = None
    else:
        protocols = [f"Bearer.{token}"] if token else None
    ws = _ws_connect(url, subprotocols=protocols, open_timeout=timeout, max_size=None).__enter__()  # type: ignore[arg-type]
    return Client(ws)
