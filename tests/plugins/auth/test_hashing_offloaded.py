"""Password hashing runs on the plugin's workers: WebSocket traffic keeps
flowing while 20 logins are being hashed."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from websockets.sync.client import connect

from auth_support import auth_host_config, post_json, unique

COST = 12  # ~4x the default work per hash: 20 logins take seconds on 2 workers


def test_websocket_traffic_flows_while_20_logins_hash(redis_server, mongo_server, start_host):
    # The round trips below go as fast as the host answers: over the default frame budget.
    host = start_host(auth_host_config(redis_server, mongo_server, auth_config={"bcrypt_cost": COST},
                                       limits={"frames_per_s": 1000000, "frames_burst": 1000000}))
    name = unique("busy")
    assert post_json(host, "/api/auth/register", {"username": name, "password": "password-1"},
                     timeout=30).status == 200
    token = post_json(host, "/api/auth/login", {"username": name, "password": "password-1"},
                      timeout=30).json()["token"]

    done = threading.Event()
    finished_at: list[float] = []
    lock = threading.Lock()

    def login(_):
        r = post_json(host, "/api/auth/login", {"username": name, "password": "password-1"}, timeout=120)
        with lock:
            finished_at.append(time.monotonic())
        return r.status

    with connect(f"{host.ws_url}/", subprotocols=["Bearer." + token], open_timeout=5) as ws:
        with ThreadPoolExecutor(20) as pool:
            t0 = time.monotonic()
            futures = [pool.submit(login, i) for i in range(20)]
            round_trips: list[tuple[float, float]] = []  # (sent, latency) while logins are pending
            while not all(f.done() for f in futures):
                sent = time.monotonic()
                ws.send(json.dumps({"type": "echo", "text": str(len(round_trips))}))
                assert json.loads(ws.recv(timeout=5))["text"] == str(len(round_trips))
                round_trips.append((sent, time.monotonic() - sent))
            statuses = [f.result() for f in futures]
        done.set()
    assert statuses == [200] * 20
    last_login = max(finished_at)
    during = [lat for sent, lat in round_trips if sent < last_login]
    hashing_s = last_login - t0
    # Each hash takes tens of ms; 20 of them on 2 workers keep the CPU busy for
    # a while. The service thread still answered echo frames throughout.
    assert hashing_s > 0.5, f"logins were too fast ({hashing_s:.2f} s) to show anything"
    assert len(during) >= 20, f"only {len(during)} echo round trips in {hashing_s:.2f} s of hashing"
    during.sort()
    median = during[len(during) // 2]
    assert median < 0.1, f"median echo round trip {median * 1000:.0f} ms while hashing"
    print(f"20 logins hashed in {hashing_s:.2f} s; {len(during)} echo round trips meanwhile, "
          f"median {median * 1000:.1f} ms, max {during[-1] * 1000:.1f} ms")
