"""JWTs with the auth plugin's rules (plugins/common/token_verifier.cpp).

HMAC only (HS256 by default, HS384/HS512 when the plugin is configured so),
claims ``userId``, ``username``, ``iat``, ``exp`` (and optional ``nbf``).
``decode`` refuses exactly what the plugin refuses, with the same reasons:
a malformed token, a bad signature, another algorithm than the one pinned,
a missing or non-numeric ``exp``, an expired token (``now >= exp + leeway``),
a future ``nbf``, a missing or empty ``userId``/``username``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from typing import Any, Mapping

__all__ = ["InvalidToken", "encode", "decode", "ALGORITHMS"]

ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
DEFAULT_TTL_S = 86400
DEFAULT_LEEWAY_S = 30
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-=.]+$")


class InvalidToken(ValueError):
    """The token is refused; the message is the auth plugin's reason."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(user_id: str, username: str, secret: str | bytes, *, ttl_s: int = DEFAULT_TTL_S,
           algorithm: str = "HS256", now: float | None = None, extra: Mapping[str, Any] | None = None) -> str:
    """A token as the auth plugin issues it (``iat`` = now, ``exp`` = now + ttl)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r} (HS256, HS384, HS512)")
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"userId": user_id, "username": username, "iat": iat, "exp": iat + ttl_s}
    claims.update(extra or {})
    key = secret.encode() if isinstance(secret, str) else secret
    head = _b64(json.dumps({"alg": algorithm, "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), ALGORITHMS[algorithm]).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _numeric_date(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if not math.isfinite(v) or abs(v) > 9e15:
        return None
    return math.floor(v)


def decode(token: str, secret: str | bytes, *, algorithm: str = "HS256", leeway_s: int = DEFAULT_LEEWAY_S,
           now: float | None = None) -> dict[str, Any]:
    """The claims of a token the auth plugin would accept; else InvalidToken."""
    if not token:
        raise InvalidToken("no token")
    if len(token) > 8192 or not _TOKEN_CHARS.match(token) or token.count(".") != 2:
        raise InvalidToken("malformed token")
    head_b64, body_b64, sig_b64 = token.split(".")
    try:
        header = json.loads(_unb64(head_b64))
        claims = json.loads(_unb64(body_b64))
        sig = _unb64(sig_b64)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("bad signature or malformed token") from None
    alg = header.get("alg") if isinstance(header, dict) else None
    if alg not in ALGORITHMS:  # "none" and unknown algorithms never verify
        raise InvalidToken("bad signature or malformed token")
    key = secret.encode() if isinstance(secret, str) else secret
    want = hmac.new(key, f"{head_b64}.{body_b64}".encode(), ALGORITHMS[alg]).digest()
    if not hmac.compare_digest(want, sig):
        raise InvalidToken("bad signature or malformed token")
    if alg != algorithm:
        raise InvalidToken("unexpected algorithm")
    if not isinstance(claims, dict):
        raise InvalidToken("claims are not an object")
    t = int(now if now is not None else time.time())
    exp = _numeric_date(claims.get("exp"))
    if exp is None:
        raise InvalidToken("no valid exp claim")
    if t >= exp + leeway_s:
        raise InvalidToken("token expired")
    if "nbf" in claims:
        nbf = _numeric_date(claims["nbf"])
        if nbf is None:
            raise InvalidToken("invalid nbf claim")
        if t + leeway_s < nbf:
            raise InvalidToken("token not valid yet")
    for name in ("userId", "username"):
        v = claims.get(name)
        if not isinstance(v, str) or not v:
            raise InvalidToken(f"no {name} claim")
    return claims
