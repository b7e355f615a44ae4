"""The authenticate hook: the token from the Bearer subprotocol (echoed) or
?token=, every bad token refused with 401 and no upgrade, identity attached."""

from __future__ import annotations

import json
import time

import pytest
import websockets
from websockets.sync.client import connect

from auth_support import SECRET, auth_host_config, post_json, unique
from tokens import claims_of, make_token, tamper


@pytest.fixture(scope="module")
def user_token(auth_host):
    name = unique("ws")
    assert post_json(auth_host, "/api/auth/register", {"username": name, "password": "password-1"}).status == 200
    r = post_json(auth_host, "/api/auth/login", {"username": name, "password": "password-1"})
    assert r.status == 200
    return r.json()["token"]


def whoami(c) -> dict:
    c.send('{"type":"whoami"}')
    return json.loads(c.recv(timeout=5))


def test_bearer_subprotocol_is_accepted_and_echoed(auth_host, user_token):
    claims = claims_of(user_token)
    with connect(f"{auth_host.ws_url}/", subprotocols=["Bearer." + user_token], open_timeout=5) as c:
        assert c.subprotocol == "Bearer." + user_token  # a browser closes the socket otherwise
        me = whoami(c)
        assert (me["user"], me["name"]) == (claims["userId"], claims["username"])
        c.send('{"type":"echo","text":"hi"}')
        assert json.loads(c.recv(timeout=5)) == {"type": "echo", "text": "hi"}


def test_query_token_is_accepted(auth_host, user_token):
    with connect(f"{auth_host.ws_url}/?token={user_token}", open_timeout=5) as c:
        assert whoami(c)["user"] == claims_of(user_token)["userId"]


def test_authorization_header_is_accepted(auth_host, user_token):
    with connect(f"{auth_host.ws_url}/ws", additional_headers={"Authorization": "Bearer " + user_token},
                 open_timeout=5) as c:
        assert whoami(c)["name"] == claims_of(user_token)["username"]


def bad_tokens(good: str) -> dict[str, str | None]:
    now = int(time.time())
    base = dict(claims_of(good))
    return {
        "no token": None,
        "garbage": "garbage",
        "three garbage parts": "a.b.c",
        "other secret": make_token(base, "another-secret-that-is-long-enough-0123456789"),
        "alg none": make_token(base, "", alg="none", header={"alg": "none", "typ": "JWT"}),
        "alg none, signature kept": make_token(base, "", alg="none", header={"alg": "none"}) + good.split(".")[2],
        "HS512 when HS256 is configured": make_token(base, SECRET, alg="HS512"),
        "HS384 when HS256 is configured": make_token(base, SECRET, alg="HS384"),
        "expired": make_token({**base, "iat": now - 7200, "exp": now - 3600}, SECRET),
        "nbf in the future": make_token({**base, "nbf": now + 3600}, SECRET),
        "no exp": make_token({k: v for k, v in base.items() if k != "exp"}, SECRET),
        "exp as a string": make_token({**base, "exp": str(now + 3600)}, SECRET),
        "missing userId": make_token({k: v for k, v in base.items() if k != "userId"}, SECRET),
        "userId not a string": make_token({**base, "userId": {"$ne": None}}, SECRET),
        "missing username": make_token({k: v for k, v in base.items() if k != "username"}, SECRET),
        "tampered payload": tamper(good, userId="000000000000000000000000"),
        "tampered username": tamper(good, username="admin"),
    }


@pytest.mark.parametrize("how", ["subprotocol", "query"])
def test_every_bad_token_is_refused_with_401_and_no_upgrade(auth_host, user_token, how):
    for case, token in bad_tokens(user_token).items():
        kwargs, url = {}, f"{auth_host.ws_url}/"
        if token is not None and how == "subprotocol":
            kwargs["subprotocols"] = ["Bearer." + token]
        elif token is not None:
            url += "?token=" + token
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            with connect(url, open_timeout=5, **kwargs):
                pass
        assert refused.value.response.status_code == 401, case
    m = auth_host.metrics()
    assert m.total("aurora_auth_handshakes_total", result="rejected") >= len(bad_tokens(user_token))


def test_leeway_tolerates_small_skew(auth_host, user_token):
    now = int(time.time())
    base = claims_of(user_token)
    skewed = make_token({**base, "nbf": now + 5, "exp": now - 5}, SECRET)  # within the default 30 s
    with connect(f"{auth_host.ws_url}/", subprotocols=["Bearer." + skewed], open_timeout=5) as c:
        assert whoami(c)["user"] == base["userId"]


def test_query_token_can_be_disabled(redis_server, mongo_server, start_host):
    host = start_host(auth_host_config(redis_server, mongo_server, auth_config={"query_token": False}))
    now = int(time.time())
    token = make_token({"userId": "0123456789abcdef01234567", "username": "q", "iat": now, "exp": now + 60}, SECRET)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with connect(f"{host.ws_url}/?token={token}", open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
    with connect(f"{host.ws_url}/", subprotocols=["Bearer." + token], open_timeout=5) as c:
        assert c.subprotocol == "Bearer." + token


def test_configured_hs512_refuses_hs256(redis_server, mongo_server, start_host):
    host = start_host(auth_host_config(redis_server, mongo_server, auth_config={"jwt_algorithm": "HS512"}))
    name = unique("h5")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "password-1"}).status == 200
    token = post_json(host, "/api/auth/login", {"username": name, "password": "password-1"}).json()["token"]
    with connect(f"{host.ws_url}/", subprotocols=["Bearer." + token], open_timeout=5):
        pass
    hs256 = make_token(claims_of(token), SECRET, alg="HS256")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with connect(f"{host.ws_url}/", subprotocols=["Bearer." + hs256], open_timeout=5):
            pass
    assert refused.value.response.status_code == 401
