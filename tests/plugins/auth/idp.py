"""A stand-in identity provider for the tests: RSA and EC key pairs made in
the test, their public JWKS, RS256/ES256 tokens signed with them, and a local
HTTP server that serves the JWKS (and can be made to fail)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://idp.test/"
AUDIENCE = "aurora"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A signing key of the provider: kind "RS256" (RSA 2048) or "ES256" (P-256)."""

    def __init__(self, kid: str, alg: str = "RS256"):
        self.kid, self.alg = kid, alg
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(alg)

    def jwk(self) -> dict:
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64(n),
                    "e": b64(pub.e.to_bytes(3, "big"))}
        return {"kty": "EC", "kid": self.kid, "crv": "P-256", "x": b64(pub.x.to_bytes(32, "big")),
                "y": b64(pub.y.to_bytes(32, "big"))}

    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, claims: dict, header: dict | None = None) -> str:
        h = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        signing = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        if self.alg == "RS256":
            sig = self.private.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS: r || s, not DER
        return signing.decode() + "." + b64(sig)


def jwks(*keys: Key) -> str:
    return json.dumps({"keys": [k.jwk() for k in keys]})


def claims(sub: str = "auth0|5f7c8ec7a1", name: str = "ada", **over) -> dict:
    now = int(time.time())
    c = {"sub": sub, "preferred_username": name, "iss": ISSUER, "aud": [AUDIENCE, "account"], "iat": now,
         "exp": now + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def hs256_with(secret: bytes, claims_: dict, kid: str) -> str:
    """An HS256 token whose HMAC key is `secret` (the algorithm-confusion forgery)."""
    import hashlib
    import hmac
    h = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing = b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims_).encode())
    return signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


class JwksServer:
    """Serves `body` at /.well-known/jwks.json on 127.0.0.1 (status `status`);
    counts requests. Stopped by close()."""

    def __init__(self, body: str):
        self.body, self.status, self.requests = body, 200, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests += 1
                payload = server.body.encode() if server.status == 200 else b"down"
                self.send_response(server.status if self.path == "/.well-known/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
