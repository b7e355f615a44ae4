"""Tokens from an identity provider at the WebSocket handshake (docs/auth.md,
"Tokens from an identity provider"): RS256 and ES256 tokens signed with key
pairs made in the test, keys from a JWKS file, PEM, or a JWKS URL on a local
HTTP server; issuer, audience, claim mapping, rotation by kid, and every bad
token or bad key set refused with its reason."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import websockets
from websockets.sync.client import connect

from aurora_host import AuroraHost, HostStartError
from auth_support import HOST, SECRET, auth_host_config, require
from idp import AUDIENCE, ISSUER, JwksServer, Key, b64, claims, hs256_with, jwks
from tokens import make_token
from waiting import wait_until

TIMEOUT = 10.0


def idp_jwt(**over) -> dict:
    return {"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE, **over}


def whoami(host: AuroraHost, token: str) -> dict:
    with connect(f"{host.ws_url}/", subprotocols=["Bearer." + token], open_timeout=5) as c:
        c.send('{"type":"whoami"}')
        return json.loads(c.recv(timeout=5))


def refusal(host: AuroraHost, token: str) -> str:
    """The 401's reason (the handshake must be refused)."""
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with connect(f"{host.ws_url}/", subprotocols=["Bearer." + token], open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
    return refused.value.response.body.decode(errors="replace")


def replace(path: Path, text: str) -> None:
    """Writes `text` to `path` at once (rename), as a deployment should: the
    host never reads a half-written file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def accepted(host: AuroraHost, token: str) -> bool:
    try:
        whoami(host, token)
        return True
    except websockets.exceptions.InvalidStatus:
        return False


@pytest.fixture
def idp_host(redis_server, mongo_server, start_host, tmp_path):
    """idp_host(key file text, **jwt settings) -> a host with auth and the
    probe, trusting the keys in that file (and the HS256 secret)."""
    def start(text: str, name: str = "jwks.json", **jwt) -> tuple[AuroraHost, Path]:
        keys = tmp_path / name
        keys.write_text(text)
        return start_host(auth_host_config(redis_server, mongo_server, with_probe=True,
                                           jwt=idp_jwt(keys_file=str(keys), **jwt))), keys
    return start


@pytest.fixture
def rsa_key():
    return Key("rsa-1", "RS256")


@pytest.fixture
def ec_key():
    return Key("ec-1", "ES256")


def test_rs256_and_es256_tokens_from_a_jwks_file_authenticate(idp_host, rsa_key, ec_key):
    host, _ = idp_host(jwks(rsa_key, ec_key))
    for k in (rsa_key, ec_key):
        me = whoami(host, k.sign(claims(sub=f"auth0|{k.kid}", name=f"user {k.kid}")))
        assert (me["user"], me["name"]) == (f"auth0|{k.kid}", f"user {k.kid}"), me
    # The user service's HS256 tokens keep working beside the provider's.
    hs = make_token({"userId": "65f0c0ffee0123456789abcd", "username": "local", "exp": int(time.time()) + 600}, SECRET)
    assert whoami(host, hs)["name"] == "local"
    m = host.metrics()
    assert m.total("aurora_auth_token_key_loads_total", result="ok") == 1


def test_pem_keys_and_a_claim_mapping(idp_host, rsa_key):
    host, _ = idp_host(rsa_key.public_pem(), "keys.pem", audience="*", claims={"user_id": "uid", "username": "email"})
    me = whoami(host, rsa_key.sign(claims(uid="u-77", email="ada@example.com")))
    assert (me["user"], me["name"]) == ("u-77", "ada@example.com")
    assert "no uid claim" in refusal(host, rsa_key.sign(claims(email="ada@example.com")))


def test_every_bad_provider_token_is_refused_with_its_reason(idp_host, rsa_key, ec_key):
    host, _ = idp_host(jwks(rsa_key, ec_key))
    good = rsa_key.sign(claims())
    head, body, sig = good.split(".")
    other = Key("rsa-1", "RS256")  # another key under the same kid
    now = int(time.time())
    cases = {
        "tampered payload": (head + "." + body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB") + "." + sig,
                             "bad signature"),
        "signed by another key": (other.sign(claims()), "bad signature"),
        "wrong audience": (rsa_key.sign(claims(aud="someone-else")), "wrong audience"),
        "no audience": (rsa_key.sign(claims(aud=None)), "wrong audience"),
        "wrong issuer": (rsa_key.sign(claims(iss="https://evil.test/")), "wrong issuer"),
        "expired": (rsa_key.sign(claims(iat=now - 7200, exp=now - 3600)), "token expired"),
        "a rotated-out kid": (Key("gone", "RS256").sign(claims()), "no key with the token's kid"),
        "ES256 under the RSA kid": (ec_key.sign(claims(), header={"kid": "rsa-1"}), "no key for the token's algorithm"),
        "alg confusion: HS256 keyed with the public PEM": (
            hs256_with(rsa_key.public_pem().encode(), claims(userId="x", username="y"), "rsa-1"), "bad signature"),
        "EdDSA": (b64(json.dumps({"alg": "EdDSA", "kid": "rsa-1"}).encode()) + "." + body + "." + sig,
                  "unexpected algorithm"),
        "sub with a space": (rsa_key.sign(claims(sub="has space")), "no sub claim"),
    }
    for case, (token, why) in cases.items():
        reason = refusal(host, token)
        assert why in reason, (case, reason)
    assert host.metrics().total("aurora_auth_handshakes_total", result="rejected") >= len(cases)


def test_a_rewritten_key_file_takes_effect(idp_host, rsa_key):
    host, keys = idp_host(jwks(rsa_key), keys_refresh_s=1)
    old_token = rsa_key.sign(claims())
    assert accepted(host, old_token)
    rotated = Key("rsa-2", "RS256")
    replace(keys, jwks(rotated))  # the old key is retired
    wait_until(lambda: accepted(host, rotated.sign(claims())), "acceptance of the new key's token")
    assert "no key with the token's kid" in refusal(host, old_token)
    # A broken rewrite keeps the keys in use, and says why.
    replace(keys, '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}')
    wait_until(lambda: any("OKP" in line and "the keys loaded before stay in use" in line
                           for line in host.stderr_lines()), "the log line of the refused rewrite")
    assert accepted(host, rotated.sign(claims()))


def test_a_jwks_url_is_fetched_retried_and_refetched_for_a_new_kid(redis_server, mongo_server, start_host, rsa_key):
    server = JwksServer(jwks(rsa_key))
    server.status = 503  # the provider is down when Aurora starts
    try:
        host = start_host(auth_host_config(redis_server, mongo_server, with_probe=True,
                                           jwt=idp_jwt(jwks_url=server.url, keys_refresh_s=3600)))
        assert "not accepted here (no jwt keys)" in refusal(host, rsa_key.sign(claims()))
        server.status = 200  # back: picked up by the retry (every 5 s), not the hourly refresh
        wait_until(lambda: accepted(host, rsa_key.sign(claims())), "the keys after the provider came back")
        # Rotation: the provider publishes a new key; the first token with its
        # kid makes Aurora fetch at once.
        rotated = Key("rsa-2", "RS256")
        server.body = jwks(rsa_key, rotated)
        before = server.requests
        wait_until(lambda: accepted(host, rotated.sign(claims())), "acceptance of the new kid", timeout=5)
        assert server.requests - before <= 2, server.requests - before
        # Unknown kids do not hammer the provider: at most one fetch per 10 s,
        # and the one they asked for meanwhile comes when the 10 s are up.
        before = server.requests
        stranger = Key("nobody", "RS256")
        for _ in range(20):
            refusal(host, stranger.sign(claims()))
        assert server.requests - before <= 1, server.requests - before
        wait_until(lambda: server.requests - before >= 1, "the fetch an unknown kid asked for", timeout=13)
        assert server.requests - before == 1, server.requests - before
    finally:
        server.close()


@pytest.mark.parametrize("jwt_section,why", [
    ({"keys_file": "KEYS", "jwks_url": "https://idp.test/jwks"}, "'jwt.jwks_url': set keys_file or jwks_url, not both"),
    ({"jwks_url": "ftp://idp.test/jwks"}, "'jwt.jwks_url': must start with https://"),
    ({"keys_refresh_s": 0, "jwks_url": "https://idp.test/jwks"}, "'jwt.keys_refresh_s': must be between 1 and 86400"),
    ({"jwks_url": "https://idp.test/jwks", "audience": "aurora"}, "'jwt.issuer': is required with keys_file or jwks_url"),
    ({"jwks_url": "https://idp.test/jwks", "issuer": "https://idp.test/"},
     "'jwt.audience': is required with keys_file or jwks_url"),
    ({"claims": {"user_id": ""}}, "'jwt.claims.user_id': must not be empty"),
    ({"claims": {"userid": "sub"}}, "jwt.claims"),
])
def test_a_bad_jwt_section_is_refused_naming_the_key(redis_server, mongo_server, tmp_path, jwt_section, why):
    section = {k: (str(tmp_path / "k.json") if v == "KEYS" else v) for k, v in jwt_section.items()}
    cfg = auth_host_config(redis_server, mongo_server, jwt={"secret": SECRET, **section})
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    assert why in str(err.value), str(err.value)[-2000:]


@pytest.mark.parametrize("content,why", [
    ('{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}',
     'key 0: \\"kty\\": \\"OKP\\"'),
    ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "a symmetric key"),
    ("not a key", "no PEM public key or certificate found"),
    (None, "cannot stat the file"),
])
def test_a_bad_key_file_stops_the_start_with_its_reason(redis_server, mongo_server, tmp_path, content, why):
    keys = tmp_path / "keys.json"
    if content is not None:
        keys.write_text(content)
    cfg = auth_host_config(redis_server, mongo_server, jwt=idp_jwt(keys_file=str(keys)))
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path / "h", cfg)
    text = str(err.value)
    assert "exited with code 2" in text and why in text, text[-2000:]
