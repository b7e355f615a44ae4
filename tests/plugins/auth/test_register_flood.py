"""Registration floods: a per-address throttle in Redis (429 + Retry-After),
and registrations hashed on a capped lane of the workers, so logins overtake
queued registrations and a full registration queue refuses registrations
only. Client addresses come from X-Forwarded-For, believed from 127.0.0.1
(TRUST_LOOPBACK). tests/plugins/auth/measure_login_under_flood.py measures
the login latency itself."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pymongo
import redis

from auth_support import TRUST_LOOPBACK, ArrivalProbe, auth_host_config, from_addr, post_json, unique

WINDOW_MS = 1500
COST = 12  # each registration hashes for a few hundred ms: a queue builds up


def register(host, name, addr, timeout: float = 10.0):
    return post_json(host, "/api/auth/register", {"username": name, "password": "password-1"},
                     headers=from_addr(addr), timeout=timeout)


def test_registrations_are_throttled_per_address(redis_server, mongo_server, start_host):
    prefix = unique("reg") + ":"
    cfg = auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK, auth_config={
        "redis_prefix": prefix, "register_window_ms": WINDOW_MS, "register_max_per_addr": 3})
    host = start_host(cfg)
    flooder = "203.0.113.7"
    for _ in range(3):
        assert register(host, unique("r"), flooder).status == 200
    refused = unique("r")
    r = register(host, refused, flooder)
    assert r.status == 429, r.body
    assert r.json() == {"error": "Too many registrations from this address; try again later"}
    assert 1 <= int(r.headers["retry-after"]) <= 2
    # Another address registers as usual.
    assert register(host, unique("r"), "198.51.100.8").status == 200

    db = cfg["mongo"]["url"].rsplit("/", 1)[1].split("?")[0]
    with pymongo.MongoClient(cfg["mongo"]["url"]) as client:
        assert client[db]["users"].count_documents({"username": refused}) == 0  # never hashed nor stored
    with redis.Redis.from_url(redis_server.url) as client:
        key = f"{prefix}register:addr:{flooder}"
        assert int(client.get(key)) == 4
        assert 0 < client.pttl(key) <= WINDOW_MS

    deadline = time.monotonic() + 10
    while (r := register(host, refused, flooder)).status == 429 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling interval, bounded by the deadline
    assert r.status == 200, (r.status, r.body)
    m = host.metrics()
    assert m.total("aurora_auth_registrations_total", result="throttled") >= 1


def test_login_overtakes_queued_registrations(redis_server, mongo_server, start_host):
    # 12 registrations from 12 addresses, then one login: on the capped lane
    # the registrations hash one at a time while the login takes the other
    # worker, so it finishes while most registrations are still waiting.
    # (Before: one FIFO, and the login waited behind all of them.)
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK,
                                       auth_config={"bcrypt_cost": COST}))
    owner = unique("owner")
    assert register(host, owner, "198.51.100.1", timeout=30).status == 200

    lock = threading.Lock()
    done: list[tuple[float, str, int]] = []

    def timed(what: str, fn):
        status = fn().status
        with lock:
            done.append((time.monotonic(), what, status))

    n = 12
    arrivals = ArrivalProbe(host)
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(timed, "register", lambda i=i: register(host, unique("q"), f"10.1.0.{i + 1}",
                                                                      timeout=120)) for i in range(n)]
        arrivals.wait(n)  # the registrations are in the host before the login is sent
        timed("login", lambda: post_json(host, "/api/auth/login", {"username": owner, "password": "password-1"},
                                         headers=from_addr("198.51.100.1"), timeout=120))
        for f in futures:
            f.result()
    done.sort()
    order = [what for _, what, _ in done]
    assert sorted(s for _, _, s in done) == [200] * (n + 1), done
    before_login = order.index("login")
    # At most the registrations hashing when the login arrived (one) and
    # those finishing while it hashed (about one) may come first.
    assert before_login <= 4, f"{before_login} of {n} registrations finished before the login: {order}"
    print(f"{before_login} of {n} queued registrations finished before the login")


def test_full_registration_queue_refuses_registrations_not_logins(redis_server, mongo_server, start_host):
    host = start_host(auth_host_config(redis_server, mongo_server, with_echo=False, **TRUST_LOOPBACK,
                                       auth_config={"bcrypt_cost": COST, "register_max_queue": 2}))
    owner = unique("owner")
    assert register(host, owner, "198.51.100.1", timeout=30).status == 200
    with ThreadPoolExecutor(8) as pool:
        arrivals = ArrivalProbe(host)
        futures = [pool.submit(register, host, unique("f"), f"10.2.0.{i + 1}", 120) for i in range(8)]
        arrivals.wait(8)
        login = post_json(host, "/api/auth/login", {"username": owner, "password": "password-1"},
                          headers=from_addr("198.51.100.1"), timeout=120)
        statuses = [f.result().status for f in futures]
    assert login.status == 200
    # One hashing, two queued: the rest are refused at once.
    assert statuses.count(503) >= 4 and set(statuses) <= {200, 503}, statuses
