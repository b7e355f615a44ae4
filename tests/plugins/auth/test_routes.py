"""POST /api/auth/register and /api/auth/login: the seed's session, bodies,
status codes, the unique index under concurrency, CORS."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymongo

from auth_support import REPO, SECRET, auth_host_config, post_json, require, unique, AUTH, BUILD
from tokens import claims_of, header_of

from aurora_host import deep_merge, http_request


def test_seed_curl_session_against_the_user_service_profile(redis_server, mongo_server, start_host):
    # The profile file itself, with only the addresses of the test servers
    # and the secret (AURORA_JWT_SECRET in production) added.
    profile = json.loads((REPO / "samples" / "config" / "user-service.json").read_text())
    assert profile["listen"]["port"] == 4000
    assert [p["name"] for p in profile["plugins"]] == ["auth"]
    db = unique("seed")
    cfg = deep_merge(profile, {"plugin_path": str(Path(require(AUTH)).parent),
                               "redis": {"url": redis_server.url}, "mongo": {"url": mongo_server.url(db)},
                               "jwt": {"secret": SECRET}})
    host = start_host(cfg)

    # curl -X POST http://localhost:4000/api/auth/register -H "Content-Type: application/json"
    #   -d '{"username":"testuser","password":"testpass"}'
    r = post_json(host, "/api/auth/register", b'{"username":"testuser","password":"testpass"}')
    assert (r.status, r.json()) == (200, {"ok": True})
    # curl -X POST http://localhost:4000/api/auth/login ... same body
    r = post_json(host, "/api/auth/login", b'{"username":"testuser","password":"testpass"}')
    assert r.status == 200
    token = r.json()["token"]
    assert set(r.json()) == {"token"}

    # Token payload as seed §14.1: userId (ObjectId hex), username, iat, exp = iat + 1 day.
    assert header_of(token)["alg"] == "HS256"
    claims = claims_of(token)
    assert set(claims) == {"userId", "username", "iat", "exp"}
    assert re.fullmatch(r"[0-9a-f]{24}", claims["userId"])
    assert claims["username"] == "testuser"
    assert claims["exp"] - claims["iat"] == 86400
    assert abs(claims["iat"] - time.time()) < 60

    # The other documented answers.
    r = post_json(host, "/api/auth/register", {"username": "testuser", "password": "testpass"})
    assert (r.status, r.json()) == (409, {"error": "User exists"})
    r = post_json(host, "/api/auth/register", {"username": "testuser"})
    assert (r.status, r.json()) == (400, {"error": "Missing fields"})
    r = post_json(host, "/api/auth/login", {"username": "testuser", "password": "wrongpass"})
    assert (r.status, r.body) == (401, b"")
    r = post_json(host, "/api/auth/login", {"username": "nobody_here", "password": "testpass"})
    assert (r.status, r.body) == (401, b"")

    # Stored as seed §4.1.3, with a bcrypt $2b$ hash of the default cost 10.
    with pymongo.MongoClient(mongo_server.url(db)) as client:
        users = client[db]["users"]
        doc = users.find_one({"username": "testuser"})
        assert str(doc["_id"]) == claims["userId"]
        assert doc["passwordHash"].startswith("$2b$10$") and "testpass" not in doc["passwordHash"]
        assert doc["createdAt"] and doc["updatedAt"]
        indexes = users.index_information()
        assert any(ix.get("unique") and ix["key"] == [("username", 1)] for ix in indexes.values()), indexes
    assert host.get("/ready").status == 200


def test_twenty_concurrent_registrations_of_one_name(auth_host, mongo_server):
    name = unique("race")

    def register(_):
        return post_json(auth_host, "/api/auth/register", {"username": name, "password": "password-123"},
                         timeout=30)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(register, range(20)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200] + [409] * 19, statuses
    assert all(r.json() == {"error": "User exists"} for r in results if r.status == 409)
    r = post_json(auth_host, "/api/auth/login", {"username": name, "password": "password-123"})
    assert r.status == 200


BAD_BODIES = [
    (b"{not json", "Invalid JSON"),
    (b"", "Invalid JSON"),
    (b'["alice","password1"]', "Body must be a JSON object"),
    (b'{"username":"alice"}', "Missing fields"),
    (b'{"password":"password1"}', "Missing fields"),
    (b'{"username":"","password":"password1"}', "Missing fields"),
    (b'{"username":null,"password":"password1"}', "Missing fields"),
    (b'{"username":{"$ne":null},"password":"password1"}', "username and password must be strings"),
    (b'{"username":"alice","password":{"$ne":null}}', "username and password must be strings"),
    (b'{"username":["alice"],"password":"password1"}', "username and password must be strings"),
    (b'{"username":12345,"password":"password1"}', "username and password must be strings"),
    (b'{"username":"alice","password":12345678}', "username and password must be strings"),
    (b'{"username":"alice","password":true}', "username and password must be strings"),
    (b'{"username":"ab","password":"password1"}', "username must be 3 to 32 characters"),
    (json.dumps({"username": "a" * 33, "password": "password1"}).encode(), "username must be 3 to 32 characters"),
    (b'{"username":"bad name","password":"password1"}', "username must be 3 to 32 characters"),
    (b'{"username":"al$ce","password":"password1"}', "username must be 3 to 32 characters"),
    ('{"username":"åsa_x","password":"password1"}'.encode(), "username must be 3 to 32 characters"),
    (b'{"username":"alice","password":"short7!"}', "password must be 8 to 128 bytes"),
    (json.dumps({"username": "alice", "password": "p" * 129}).encode(), "password must be 8 to 128 bytes"),
    (b'{"username":"alice","password":"password1\\u0000tail"}', "NUL characters are not allowed"),
]


def test_every_bad_body_is_a_400_with_a_message(auth_host):
    for route in ("/api/auth/register", "/api/auth/login"):
        for body, message in BAD_BODIES:
            r = post_json(auth_host, route, body)
            assert r.status == 400, (route, body, r.status, r.body)
            assert r.json()["error"].startswith(message), (route, body, r.json())


def test_body_over_4_kib_is_a_413_before_parsing(auth_host):
    # Valid JSON, padded: the host accepts up to 64 KiB, the plugin parses at most 4 KiB.
    body = b"{" + b" " * 4096 + b'"username":"alice_x","password":"password1"}'
    for route in ("/api/auth/register", "/api/auth/login"):
        r = post_json(auth_host, route, body)
        assert (r.status, r.json()) == (413, {"error": "Body too large"}), (route, r.status, r.body)


def test_limits_are_inclusive(auth_host):
    name = unique("x")[:32]
    for username, password in ((name[:3] + "_ok", "p" * 8), (name.ljust(32, "z"), "p" * 128)):
        r = post_json(auth_host, "/api/auth/register", {"username": username, "password": password})
        assert r.status == 200, (username, r.body)
        r = post_json(auth_host, "/api/auth/login", {"username": username, "password": password})
        assert r.status == 200


def test_cors_allow_list_and_preflight(auth_host):
    allowed, other = "http://app.example", "http://evil.example"
    for route in ("/api/auth/register", "/api/auth/login"):
        r = auth_host.get(route, method="OPTIONS", headers={"Origin": allowed,
                                                            "Access-Control-Request-Method": "POST"})
        assert r.status == 204
        assert r.headers["access-control-allow-origin"] == allowed
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        r = auth_host.get(route, method="OPTIONS", headers={"Origin": other})
        assert r.status == 403 and "access-control-allow-origin" not in r.headers

    r = post_json(auth_host, "/api/auth/login", {"username": "x"}, headers={"Origin": allowed})
    assert r.headers["access-control-allow-origin"] == allowed and "Origin" in r.headers["vary"]
    r = post_json(auth_host, "/api/auth/login", {"username": "x"}, headers={"Origin": other})
    assert "access-control-allow-origin" not in r.headers
    r = post_json(auth_host, "/api/auth/login", {"username": "x"})
    assert "access-control-allow-origin" not in r.headers


def test_wildcard_cors_in_dev_mode(redis_server, mongo_server, start_host):
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False,
                                       auth_config={"dev_mode": True, "cors_origins": ["*"]}))
    r = host.get("/api/auth/login", method="OPTIONS", headers={"Origin": "http://anything.example"})
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "http://anything.example"


def test_metrics_count_outcomes(auth_host):
    name = unique("m")
    assert post_json(auth_host, "/api/auth/register", {"username": name, "password": "password-1"}).status == 200
    assert post_json(auth_host, "/api/auth/login", {"username": name, "password": "password-1"}).status == 200
    m = auth_host.metrics()
    assert m.total("aurora_auth_registrations_total", result="created") >= 1
    assert m.total("aurora_auth_logins_total", result="ok") >= 1
    assert m.total("aurora_auth_password_hash_seconds_count") >= 2
