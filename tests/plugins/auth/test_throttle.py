"""Login throttling in Redis: exponential backoff per (username, client
address), so failures from one address never lock the owner out from
another; the per-address cap across usernames; the per-address cap on
requests in progress. Client addresses come from X-Forwarded-For, believed
from 127.0.0.1 (TRUST_LOOPBACK)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import redis

from auth_support import TRUST_LOOPBACK, auth_host_config, from_addr, post_json, unique

WINDOW_MS = 1500
ATTACKER, OWNER, BYSTANDER = "203.0.113.66", "198.51.100.20", "192.0.2.9"


def login(host, name, password, addr: str | None = None, timeout: float = 10.0):
    return post_json(host, "/api/auth/login", {"username": name, "password": password},
                     headers=from_addr(addr) if addr else None, timeout=timeout)


def wait_until_not_429(host, name, password, addr: str | None, deadline_s: float):
    deadline = time.monotonic() + deadline_s
    while True:
        r = login(host, name, password, addr)
        if r.status != 429 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)  # polling interval, bounded by the deadline


def test_attacker_cannot_lock_out_the_owner_from_another_address(redis_server, mongo_server, start_host):
    # The default policy: 5 free failures per (username, address), then backoff.
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK))
    name = unique("victim")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "right-password"},
                     headers=from_addr(OWNER)).status == 200

    statuses = [login(host, name, f"guess-{i:04d}", ATTACKER).status for i in range(20)]
    assert statuses[:5] == [401] * 5, statuses
    assert statuses[-1] == 429 and set(statuses) == {401, 429}, statuses  # the attacker is slowed down

    # The owner, from another address, with the right password: in at once.
    r = login(host, name, "right-password", OWNER)
    assert r.status == 200, (r.status, r.body)
    assert r.json()["token"]
    # A third address is not throttled for this user either (a wrong password is a plain 401).
    assert login(host, name, "wrong-password", BYSTANDER).status == 401
    # The attacker's address still is, even with the right password (no oracle).
    r = login(host, name, "right-password", ATTACKER)
    assert r.status == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["error"]


def test_backoff_doubles_per_username_and_address_and_success_clears_it(redis_server, mongo_server, start_host):
    prefix = unique("bo") + ":"
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK, auth_config={
        "redis_prefix": prefix, "login_failures_before_backoff": 3, "login_backoff_base_ms": 1000,
        "login_backoff_max_ms": 4000, "login_max_failures_per_addr": 1000}))
    name = unique("bo")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "right-password"}).status == 200
    wait_key = f"{prefix}login:wait:{name}:{ATTACKER}"

    with redis.Redis.from_url(redis_server.url) as client:
        for _ in range(3):
            assert login(host, name, "wrong-password", ATTACKER).status == 401
        first_wait = client.pttl(wait_key)
        assert 0 < first_wait <= 1000, first_wait
        r = login(host, name, "right-password", ATTACKER)  # even the right password waits
        assert r.status == 429, r.body
        assert r.headers["retry-after"] == "1"
        assert r.json() == {"error": "Too many failed logins; try again later"}

        # Once the wait is over, the next failure doubles it.
        assert wait_until_not_429(host, name, "wrong-password", ATTACKER, deadline_s=10).status == 401
        second_wait = client.pttl(wait_key)
        assert 1000 < second_wait <= 2000, second_wait
        assert login(host, name, "wrong-password", ATTACKER).status == 429
        assert int(client.get(f"{prefix}login:fail:{name}:{ATTACKER}")) == 4

        # The right password after the wait: 200, and the pair starts afresh.
        assert wait_until_not_429(host, name, "right-password", ATTACKER, deadline_s=10).status == 200
        assert not client.exists(wait_key) and not client.exists(f"{prefix}login:fail:{name}:{ATTACKER}")
        assert login(host, name, "wrong-password", ATTACKER).status == 401
        assert login(host, name, "right-password", ATTACKER).status == 200
    assert host.metrics().total("aurora_auth_logins_total", result="throttled") >= 2


def test_per_address_throttle_across_usernames(redis_server, mongo_server, start_host):
    prefix = unique("addr") + ":"
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, auth_config={
        "redis_prefix": prefix, "login_window_ms": WINDOW_MS, "login_max_failures_per_addr": 4}))
    for i in range(4):
        assert login(host, unique(f"n{i}"), "wrong-password").status == 401
    r = login(host, unique("fresh"), "whatever-password")
    assert r.status == 429 and "retry-after" in r.headers
    # The count lives in Redis, with the window as its expiry.
    with redis.Redis.from_url(redis_server.url) as client:
        assert int(client.get(prefix + "login:addr:127.0.0.1")) == 4
        assert 0 < client.pttl(prefix + "login:addr:127.0.0.1") <= WINDOW_MS
    r = wait_until_not_429(host, unique("later"), "whatever-password", None, deadline_s=10)
    assert r.status == 401


def test_requests_in_progress_per_address_are_capped(redis_server, mongo_server, start_host):
    # Cost 12: each login hashes for a few hundred ms, so 12 sent together are
    # all in progress when the later ones arrive.
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK, auth_config={
        "bcrypt_cost": 12, "max_pending_per_addr": 3}))
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: login(host, unique(f"p{i}"), "wrong-password", ATTACKER, timeout=60),
                                range(12)))
    refused = [r for r in results if r.status == 429]
    assert refused, [r.status for r in results]
    assert all(r.json() == {"error": "Too many requests in progress from this address"} for r in refused)
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert {r.status for r in results} <= {401, 429}
    assert len(results) - len(refused) >= 3  # the first three were taken
    # Another address is not affected, and the cap is released with the jobs.
    assert login(host, unique("other"), "wrong-password", OWNER, timeout=60).status == 401
    assert login(host, unique("again"), "wrong-password", ATTACKER, timeout=60).status == 401
    assert host.metrics().total("aurora_auth_requests_in_progress_refused_total") == len(refused)
