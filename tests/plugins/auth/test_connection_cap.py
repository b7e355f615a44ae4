"""The per-user cap on concurrent connections, counted in Redis across
replicas with expiring entries."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import redis
import websockets
from websockets.sync.client import connect

from auth_support import SECRET, auth_host_config, unique
from tokens import make_token


def token_for(user_id: str) -> str:
    now = int(time.time())
    return make_token({"userId": user_id, "username": "cap-" + user_id[-4:], "iat": now, "exp": now + 600}, SECRET)


def poll(predicate, deadline_s: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling interval, bounded by the deadline


def echo(c, text="ping"):
    c.send(json.dumps({"type": "echo", "text": text}))
    return json.loads(c.recv(timeout=5))


def test_cap_closes_the_extra_connection_and_frees_slots(redis_server, mongo_server, start_host):
    prefix = unique("cap") + ":"
    host = start_host(auth_host_config(redis_server, mongo_server, auth_config={
        "redis_prefix": prefix, "max_connections_per_user": 2, "connection_ttl_s": 3}))
    user = "0123456789abcdef" + unique("")[-8:]
    key = f"{prefix}conns:{user}"
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    url = f"{host.ws_url}/"
    tok = token_for(user)

    stack = contextlib.ExitStack()
    with stack:
        _cap_scenario(stack, host, r, key, url, tok)


def _cap_scenario(stack, host, r, key, url, tok):
    def open_ws():
        return stack.enter_context(connect(url, subprotocols=["Bearer." + tok], open_timeout=5))

    a = open_ws()
    b = open_ws()
    poll(lambda: r.zcard(key) == 2, what="two entries in Redis")
    third = open_ws()  # upgraded, then closed by the worker's check
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        third.recv(timeout=5)
    assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "too many connections"
    assert r.zcard(key) == 2
    assert echo(a)["text"] == "ping" and echo(b)["text"] == "ping"  # the first two are untouched

    # Entries are refreshed while connected (scores move forward)...
    before = r.zscore(key, r.zrange(key, 0, 0)[0])
    poll(lambda: (r.zscore(key, r.zrange(key, 0, 0)[0]) or 0) > before, what="a refresh")

    # ... and released on disconnect, which frees a slot.
    a.close()
    poll(lambda: r.zcard(key) == 1, what="the release of a closed connection")
    c = open_ws()
    poll(lambda: r.zcard(key) == 2, what="the new connection counted")
    assert echo(c)["text"] == "ping"
    b.close()
    c.close()
    poll(lambda: r.zcard(key) == 0, what="every entry released")
    assert host.metrics().total("aurora_auth_connection_cap_closes_total") == 1


def test_entries_of_a_crashed_replica_expire(redis_server, mongo_server, start_host):
    prefix = unique("crash") + ":"
    host = start_host(auth_host_config(redis_server, mongo_server, auth_config={
        "redis_prefix": prefix, "max_connections_per_user": 2}))
    user = "fedcba9876543210" + unique("")[-8:]
    key = f"{prefix}conns:{user}"
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    # Two entries left by a replica that died: their expiry (score) has passed.
    now_ms = int(r.time()[0]) * 1000
    r.zadd(key, {"dead-replica:1": now_ms - 1000, "dead-replica:2": now_ms - 500})
    url = f"{host.ws_url}/"
    with connect(url, subprotocols=["Bearer." + token_for(user)], open_timeout=5) as c1, \
            connect(url, subprotocols=["Bearer." + token_for(user)], open_timeout=5) as c2:
        poll(lambda: r.zcard(key) == 2 and not r.zscore(key, "dead-replica:1"), what="stale entries purged")
        assert echo(c1)["text"] == "ping" and echo(c2)["text"] == "ping"
    assert 0 < r.pttl(key) or r.zcard(key) == 0
