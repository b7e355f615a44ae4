"""aurora.client.upload and send(attachments=...): what an integrator's
script does to attach a file, against an embedded host (aurora.Host) with
chat and ingest (uploads on) on a real Redis and FerretDB."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest

import aurora
from aurora import client as aurora_client
from aurora import jwt as aurora_jwt
from aurora_py_support import built, wait_ready

SECRET = "python-upload-test-secret-32-bytes!"
USER = "65f0c0ffee0123456789abcd"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture
def host(redis_server, mongo_server):
    stream = "py-up:" + uuid.uuid4().hex[:6]
    cfg = {"listen": {"host": "127.0.0.1", "port": 0}, "redis": {"url": redis_server.url},
           "mongo": {"url": mongo_server.url("pyup_" + uuid.uuid4().hex[:8])}, "jwt": {"secret": SECRET},
           "plugins": [{"name": "probe", "path": built("probe")},
                       {"name": "chat", "path": built("chat"), "config": {"stream": stream}},
                       {"name": "ingest", "path": built("ingest"),
                        "config": {"stream": stream, "dead_letter_stream": stream + ":dead", "workers": 0,
                                   "uploads": True}}]}
    with aurora.Host(cfg) as h:
        wait_ready(h)
        yield h
    assert h.stop() == 0


def test_upload_then_attach(host):
    token = aurora_jwt.encode(USER, "py", SECRET)
    base = f"http://127.0.0.1:{host.port}"
    up = aurora_client.upload(base, token, png(), "from python.png", "image/png")
    assert (up["fileType"], up["filename"], up["url"]) == ("image/png", "from python.png", "/api/uploads/" + up["id"])
    with pytest.raises(aurora_client.UploadError) as lie:
        aurora_client.upload(base, token, png(), "lie.jpg", "image/jpeg")
    assert lie.value.status == 415 and "not image/jpeg as declared" in lie.value.message
    with pytest.raises(aurora_client.UploadError) as anon:
        aurora_client.upload(base, "not-a-token", png(), "x.png")
    assert anon.value.status == 401
    with aurora_client.connect(f"{host.ws_url}/?user={USER}") as c:
        c.join("pics")
        c.receive("joined")
        c.send("", room="pics", ref="p1", attachments=[up["id"]])
        ack = c.receive("ack", where=lambda f: f.get("ref") == "p1")
        got = c.receive("message", where=lambda f: f.get("id") == ack["id"])
        assert [a["filename"] for a in got["attachments"]] == ["from python.png"]
        c.send("x", room="pics", ref="p2", attachments=["0" * 32])
        assert c.receive("error", where=lambda f: f.get("ref") == "p2")["code"] == "bad_attachment"
