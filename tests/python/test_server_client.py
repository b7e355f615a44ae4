"""aurora.server: the typed server API client against an embedded host
(aurora.Host) with chat's server API on a real Redis, and the webhook
signature check against the signature the chat plugin's format defines."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid

import pytest

import aurora
from aurora import client as aurora_client
from aurora import server as aurora_server
from aurora_py_support import built, wait_ready

KEY = secrets.token_hex(24)
READ_ONLY = secrets.token_hex(24)


@pytest.fixture
def host(redis_server, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [
        {"name": "backend", "key": KEY, "scopes": ["publish", "moderate", "read"]},
        {"name": "dashboard", "key": READ_ONLY, "scopes": ["read"]}]}))
    cfg = {"listen": {"host": "127.0.0.1", "port": 0}, "redis": {"url": redis_server.url},
           "plugins": [{"name": "probe", "path": built("probe")},
                       {"name": "chat", "path": built("chat"),
                        "config": {"stream": "py:" + uuid.uuid4().hex[:6], "server_api": True,
                                   "server_api_keys_file": str(keys), "presence_ttl_s": 3, "presence_refresh_s": 1}}]}
    with aurora.Host(cfg) as h:
        wait_ready(h)
        yield h
    assert h.stop() == 0


def test_every_call_of_the_client(host):
    api = aurora_server.ServerApi(f"http://127.0.0.1:{host.port}", KEY)
    assert KEY not in repr(api)
    with aurora_client.connect(f"{host.ws_url}/?user=ann") as c:
        c.receive("presence")  # the automatic join took effect
        sent = api.publish("general", "from Python", ref="p-1")
        assert isinstance(sent, aurora_server.Sent) and not sent.duplicate
        assert api.publish("general", "from Python", ref="p-1") == aurora_server.Sent("general", sent.id, True)
        got = c.receive("message", where=lambda f: f["id"] == sent.id)
        assert (got["text"], got["user"]) == ("from Python", "system")
        results = api.broadcast(["general", "other"], "to both", user_id="u-1", username="Una")
        assert [type(r) for r in results] == [aurora_server.Sent, aurora_server.Sent]
        assert c.receive("message", where=lambda f: f["text"] == "to both")["user"] == "Una"
        presence = api.presence("general")
        assert presence.connections == 1 and presence.users == [aurora_server.PresenceUser("ann", "user-ann")]
        assert api.user("ann") == aurora_server.UserState("ann", True, 1)
        deadline = time.monotonic() + 10
        while api.info().connections < 1:  # each replica writes its line every presence_refresh_s
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling, bounded
        info = api.info()
        assert info.replica in {r.id for r in info.replicas}
        assert api.disconnect("ann", "bye") >= 1
        with pytest.raises(Exception):  # the connection is closed by the server
            c.receive("nothing", timeout=5)
    until = api.ban("bob", 60, "spam")
    assert until > time.time() * 1000
    api.unban("bob")


def test_errors_carry_status_code_and_retry_after(host):
    base = f"http://127.0.0.1:{host.port}"
    with pytest.raises(aurora_server.ServerApiError) as e:
        aurora_server.ServerApi(base, "x" * 40).info()
    assert (e.value.status, e.value.code) == (401, "unauthorized")
    with pytest.raises(aurora_server.ServerApiError) as e:
        aurora_server.ServerApi(base, READ_ONLY).publish("general", "no")
    assert (e.value.status, e.value.code) == (403, "forbidden")
    with pytest.raises(aurora_server.ServerApiError) as e:
        aurora_server.ServerApi(base, KEY).publish("bad room", "no")
    assert (e.value.status, e.value.code) == (400, "bad_room")
    with pytest.raises(aurora_server.ServerApiError) as e:
        aurora_server.ServerApi(base, KEY).publish("general", "x" * 4001)
    assert e.value.code == "too_long"
    with pytest.raises(ValueError):
        aurora_server.ServerApi(base, KEY, path="api/server")


def test_verify_webhook_accepts_a_signed_batch_and_refuses_the_rest():
    secret = secrets.token_hex(24)
    body = json.dumps({"events": [{"type": "connect", "user_id": "u"}]}).encode()
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-aurora-signature": f"t={t},v1={sig}"}
    assert aurora_server.verify_webhook(secret, headers, body) == [{"type": "connect", "user_id": "u"}]
    assert aurora_server.verify_webhook(secret, {"X-Aurora-Signature": f"t={t},v1={sig}"}, body)
    for bad_headers, bad_body, now in (
        (headers, body + b" ", None),                      # altered body
        ({"x-aurora-signature": f"t={t + 1},v1={sig}"}, body, None),  # another time
        ({}, body, None),                                  # no signature
        ({"x-aurora-signature": "garbage"}, body, None),
        ({"x-aurora-signature": f"t={t},v1=\u00e9{sig[1:]}"}, body, None),  # not ASCII
        (headers, body, t + 301),                          # too old
    ):
        with pytest.raises(aurora_server.WebhookSignatureError):
            aurora_server.verify_webhook(secret, bad_headers, bad_body, now=now)
    with pytest.raises(aurora_server.WebhookSignatureError):
        aurora_server.verify_webhook("another-secret-" + secret, headers, body)
