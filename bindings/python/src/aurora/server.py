"""A typed client for Aurora's server API (docs/server-api.md), for a
product's backends and test scripts, over the standard library's HTTP.

    api = aurora.server.ServerApi("http://127.0.0.1:8080", key)
    sent = api.publish("general", "Deploy at noon")          # Sent(room, id, duplicate)
    api.ban("64b0...", duration_s=3600, reason="spam")
    if api.user("64b0...").online: ...

Every method raises ``ServerApiError`` for an answer that is not 2xx, with
the HTTP status, the API's error ``code`` and, for 429 and 503, the
``retry_after`` seconds. ``verify_webhook`` checks a webhook batch's
signature on the receiving side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["PresenceUser", "Presence", "Replica", "SendFailure", "Sent", "ServerApi", "ServerApiError", "ServerInfo",
           "UserState", "WebhookSignatureError", "verify_webhook"]


class ServerApiError(Exception):
    """An answer that is not 2xx."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Sent:
    """A message stored and published (``duplicate``: its ``ref`` was seen
    before, and ``id`` is the first message's)."""
    room: str
    id: str
    duplicate: bool


@dataclass(frozen=True)
class SendFailure:
    """A room of a broadcast that failed (``code`` as the API's errors)."""
    room: str
    code: str
    error: str


@dataclass(frozen=True)
class PresenceUser:
    user_id: str
    username: str


@dataclass(frozen=True)
class Presence:
    room: str
    users: list[PresenceUser]
    connections: int
    truncated: bool


@dataclass(frozen=True)
class UserState:
    user_id: str
    online: bool
    connections: int


@dataclass(frozen=True)
class Replica:
    id: str
    connections: int
    seen_ms: int


@dataclass(frozen=True)
class ServerInfo:
    replica: str
    replicas: list[Replica]
    connections: int


class ServerApi:
    """One server API endpoint and key. Thread-safe: each call is one
    request on its own connection."""

    def __init__(self, base_url: str, key: str, *, path: str = "/api/server/", timeout: float = 10.0):
        if not path.startswith("/") or not path.endswith("/"):
            raise ValueError("path must start and end with /")
        self.base = base_url.rstrip("/") + path
        self._key = key
        self.timeout = timeout

    def __repr__(self) -> str:  # never the key
        return f"ServerApi({self.base!r})"

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self._key}",
                                              **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)
            except ValueError:
                err = {"error": raw.decode(errors="replace")}
            retry = e.headers.get("Retry-After")
            raise ServerApiError(e.code, str(err.get("code", "")), str(err.get("error", "")),
                                 int(retry) if retry and retry.isdigit() else None) from None

    @staticmethod
    def _sender(body: dict[str, Any], user_id: str | None, username: str | None, ref: str | None) -> dict[str, Any]:
        if user_id is not None:
            body["user_id"] = user_id
        if username is not None:
            body["username"] = username
        if ref is not None:
            body["ref"] = ref
        return body

    def publish(self, room: str, text: str, *, user_id: str | None = None, username: str | None = None,
                ref: str | None = None) -> Sent:
        """Into ``room``, as the system user or as ``user_id``. With ``ref``,
        calling again (a retry) never publishes twice."""
        got = self._call("POST", "publish", self._sender({"room": room, "text": text}, user_id, username, ref))
        return Sent(got["room"], got["id"], got["duplicate"])

    def broadcast(self, rooms: Sequence[str], text: str, *, user_id: str | None = None, username: str | None = None,
                  ref: str | None = None) -> list[Sent | SendFailure]:
        """The same message into each room; one result per room, in order."""
        got = self._call("POST", "broadcast",
                         self._sender({"rooms": list(rooms), "text": text}, user_id, username, ref))
        return [Sent(r["room"], r["id"], r["duplicate"]) if "id" in r else SendFailure(r["room"], r["code"], r["error"])
                for r in got["results"]]

    def disconnect(self, user_id: str, reason: str = "") -> int:
        """Closes the user's connections on every replica (code 4001).
        Returns how many chat replicas received the request."""
        return int(self._call("POST", "disconnect", {"user_id": user_id, "reason": reason})["replicas"])

    def ban(self, user_id: str, duration_s: int, reason: str = "") -> int:
        """Bans for ``duration_s`` on every replica (code 4003). Returns the
        end of the ban, in Unix milliseconds."""
        return int(self._call("POST", "ban", {"user_id": user_id, "duration_s": duration_s, "reason": reason})["until_ms"])

    def unban(self, user_id: str) -> None:
        self._call("POST", "unban", {"user_id": user_id})

    def presence(self, room: str) -> Presence:
        got = self._call("GET", "rooms/" + urllib.parse.quote(room, safe="") + "/presence")
        return Presence(got["room"], [PresenceUser(u["userId"], u["user"]) for u in got["users"]], got["connections"],
                        bool(got.get("truncated", False)))

    def user(self, user_id: str) -> UserState:
        got = self._call("GET", "users/" + urllib.parse.quote(user_id, safe=""))
        return UserState(got["user_id"], got["online"], got["connections"])

    def info(self) -> ServerInfo:
        got = self._call("GET", "info")
        return ServerInfo(got["replica"], [Replica(r["id"], r["connections"], r["seen_ms"]) for r in got["replicas"]],
                          got["connections"])


class WebhookSignatureError(ValueError):
    """A webhook batch whose signature does not verify (or is too old)."""


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: int = 300,
                   now: float | None = None) -> list[dict[str, Any]]:
    """The events of a webhook batch, once its ``X-Aurora-Signature``
    (``t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``) verifies and
    ``t`` is within ``tolerance_s`` of now. Header names are matched
    case-insensitively. Raises WebhookSignatureError otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        parts = dict(kv.split("=", 1) for kv in lower["x-aurora-signature"].split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise WebhookSignatureError("no valid X-Aurora-Signature header") from None
    if not given.isascii():
        raise WebhookSignatureError("the signature does not match")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise WebhookSignatureError("the signature does not match")
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        raise WebhookSignatureError("the signature is too old (or from the future)")
    doc = json.loads(body)
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ValueError('a webhook body is {"events": [...]}')
    return events
