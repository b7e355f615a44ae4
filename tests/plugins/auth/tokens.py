"""Hand-made JWTs for the tests: HMAC-signed with any header, claims and key,
plus the malformed ones no library would make (alg none, tampered payload)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(claims: dict, secret: str, alg: str = "HS256", header: dict | None = None) -> str:
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), _HASHES[alg]).digest()
    return signing_input + "." + b64url(sig)


def claims_of(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def header_of(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[0]))


def tamper(token: str, **changes) -> str:
    """The same header and signature over a modified payload."""
    head, payload, sig = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.update(changes)
    return head + "." + b64url(json.dumps(claims).encode()) + "." + sig
