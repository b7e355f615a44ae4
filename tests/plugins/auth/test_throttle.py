"""Login throttling in Redis: 429 with Retry-After after the configured
number of failures, per username and per client address; recovery after the
window."""

from __future__ import annotations

import time

import redis

from auth_support import auth_host_config, post_json, unique

WINDOW_MS = 1500


def login(host, name, password):
    return post_json(host, "/api/auth/login", {"username": name, "password": password})


def wait_for_status(host, name, password, want: int, deadline_s: float):
    deadline = time.monotonic() + deadline_s
    while True:
        r = login(host, name, password)
        if r.status == want or time.monotonic() > deadline:
            return r
        time.sleep(0.1)  # polling interval, bounded by the deadline


def test_per_username_throttle_and_recovery(redis_server, mongo_server, start_host):
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, auth_config={
        "login_window_ms": WINDOW_MS, "login_max_failures_per_user": 3, "login_max_failures_per_addr": 1000}))
    name = unique("thr")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "right-password"}).status == 200

    for _ in range(3):
        assert login(host, name, "wrong-password").status == 401
    t_blocked = time.monotonic()
    r = login(host, name, "wrong-password")
    assert r.status == 429, r.body
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]
    # While blocked, even the right password is refused (no oracle).
    assert login(host, name, "right-password").status == 429

    r = wait_for_status(host, name, "right-password", 200, deadline_s=10)
    assert r.status == 200, (r.status, r.body)
    assert time.monotonic() - t_blocked < 10
    # A success clears the username's count.
    assert login(host, name, "wrong-password").status == 401
    assert login(host, name, "right-password").status == 200
    m = host.metrics()
    assert m.total("aurora_auth_logins_total", result="throttled") >= 2


def test_per_address_throttle_across_usernames(redis_server, mongo_server, start_host):
    prefix = unique("addr") + ":"
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, auth_config={
        "redis_prefix": prefix, "login_window_ms": WINDOW_MS, "login_max_failures_per_user": 100,
        "login_max_failures_per_addr": 4}))
    for i in range(4):
        assert login(host, unique(f"n{i}"), "wrong-password").status == 401
    r = login(host, unique("fresh"), "whatever-password")
    assert r.status == 429 and "retry-after" in r.headers
    # The count lives in Redis, with the window as its expiry.
    with redis.Redis.from_url(redis_server.url) as client:
        assert int(client.get(prefix + "login:addr:127.0.0.1")) == 4
        assert 0 < client.pttl(prefix + "login:addr:127.0.0.1") <= WINDOW_MS
    r = wait_for_status(host, unique("later"), "whatever-password", 401, deadline_s=10)
    assert r.status == 401
