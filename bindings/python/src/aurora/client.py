"""A small synchronous WebSocket client speaking Aurora's protocol
(docs/protocol.md), over ``websockets.sync``.

    with aurora.client.connect(host.ws_url, token) as c:
        c.join("lobby")
        c.send("hello", room="lobby")
        msg = c.receive(type="message", timeout=5)

    # Attachments (the ingest plugin with `uploads` on): upload, then name it.
    up = aurora.client.upload(host.url, token, png_bytes, "photo.png")
    c.send("", room="lobby", attachments=[up["id"]])
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _ws_connect

__all__ = ["Client", "UploadError", "connect", "upload"]

Frame = dict[str, Any]


class Client:
    """One connection. Frames that a receive() skips are kept for later ones."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.backlog: list[Frame] = []

    def send_frame(self, frame: Frame) -> None:
        self.ws.send(json.dumps(frame))

    def send(self, text: str, *, room: str | None = None, ref: str | int | None = None,
             attachments: list[str] | None = None) -> None:
        """A chat message (``{"type":"message","room":..,"text":..}``);
        ``attachments``: ids of the sender's own uploads (see upload())."""
        frame: Frame = {"type": "message", "text": text}
        if room is not None:
            frame["room"] = room
        if attachments is not None:
            frame["attachments"] = list(attachments)
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


class UploadError(Exception):
    """The server refused an upload: ``status`` (400, 401, 403, 408, 413,
    415, 503) and its ``{"error"}`` text as the message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def upload(base_url: str, token: str, data: bytes, name: str, content_type: str | None = None, *,
           timeout: float = 30.0) -> Frame:
    """POST /api/uploads (docs/ingest.md, Attachments): the file's bytes under
    ``name``; the server sniffs the type (``content_type``, if given, must
    agree). Returns ``{"id","url","fileType","size","filename"}``; raises
    UploadError when refused. ``base_url``: ``http://host:port``."""
    url = base_url.rstrip("/") + "/api/uploads?name=" + urllib.parse.quote(name, safe="")
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            described: Frame = json.loads(resp.read())
            return described
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            message = json.loads(body).get("error", "")
        except ValueError:
            message = body.decode("utf-8", "replace")
        raise UploadError(e.code, message) from None
