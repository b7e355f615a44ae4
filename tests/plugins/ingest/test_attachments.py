"""Attachments (docs/ingest.md, "Attachments"; docs/protocol.md,
"Attachments"): POST /api/uploads into GridFS with the type sniffed from
the bytes, a size limit of the route's own (ABI 1.3) and a per-user quota;
served back with the stored type, Content-Disposition, nosniff and a
sandboxing CSP; attached to messages by id (the sender's own uploads only),
live on two replicas, replayed by resume, stored in the message document
(the seed's `attachments` with url and fileType) and returned by history.
Every bad upload or attachment is a clear error with nothing stored. Real
Redis, real FerretDB (both backends)."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib

import pytest

from aurora_host import http_request
from ingest_support import PROBE, Ctx, oid, require, wait_for
from test_message_changes import Client, hosts, in_room, replica, unique_room  # noqa: F401  (hosts: a fixture)
from tokens import make_token
from ingest_support import SECRET

ALICE, BOB = oid(111), oid(112)
FAST = {"claim_idle_ms": 1000, "claim_interval_ms": 250, "block_ms": 500, "mongo_timeout_ms": 1000}


def png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG (the web client test shows one), red pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def token(user: str, **claims) -> str:
    return make_token({"userId": user, "username": "u" + user[-3:], "exp": int(time.time()) + 600, **claims}, SECRET)


def upload(host, data: bytes, name: str | None = "file.bin", ctype: str | None = None, user: str = ALICE,
           auth: str | None = None, timeout: float = 10.0):
    headers = {"Authorization": auth if auth is not None else f"Bearer {token(user)}"}
    if ctype:
        headers["Content-Type"] = ctype
    target = "/api/uploads" + (f"?name={name}" if name is not None else "")
    return http_request(host.port, target, method="POST", body=data, headers=headers, timeout=timeout)


def files(ctx: Ctx) -> list[dict]:
    return list(ctx.mongo[ctx.db]["uploads.files"].find({}))


def uploads_host(ctx: Ctx, hosts, name: str = "a", **settings):
    ingest = {"workers": 1, "history": True, "uploads": True, **FAST, **settings}
    return replica(ctx, hosts, name, ingest=ingest)


def test_upload_attach_live_on_both_replicas_resumed_in_history_and_served(ctx, hosts):
    room = unique_room()
    a = uploads_host(ctx, hosts, "a")
    b = replica(ctx, hosts, "b", ingest={"workers": 0, "history": True, **FAST})
    image = png()
    r = upload(a, image, name="red%20dot.png", ctype="image/png")
    assert r.status == 201, r.body
    up = r.json()
    assert set(up) == {"id", "url", "fileType", "size", "filename"}
    assert (up["fileType"], up["size"], up["filename"], up["url"]) == ("image/png", len(image), "red dot.png",
                                                                       "/api/uploads/" + up["id"])
    assert r.headers["location"] == up["url"]
    pdf = upload(a, PDF, name="plan.pdf").json()  # no declared type: the bytes say

    alice, bob = in_room(a, ALICE, room), in_room(b, BOB, room)
    ack = alice.ask(type="message", room=room, text="", attachments=[up["id"], pdf["id"]])
    assert ack["type"] == "ack", ack
    want = [up, {**pdf, "fileType": "application/pdf", "filename": "plan.pdf"}]
    live = bob.wait(lambda f: f.get("type") == "message" and f.get("id") == ack["id"], "the message on b")
    assert (live["text"], live["attachments"]) == ("", want)

    late = Client(b, oid(113))
    late.send(type="resume", room=room, since="0-0", ref="late")
    replayed = late.wait(lambda f: f.get("type") == "message" and f.get("id") == ack["id"], "the replay")
    assert replayed["attachments"] == want

    wait_for(lambda: ctx.coll.count_documents({"streamId": ack["id"]}) == 1, "the message stored", timeout=15)
    doc = ctx.coll.find_one({"streamId": ack["id"]})
    assert [{k: a[k] for k in ("id", "url", "fileType", "size", "filename")} for a in doc["attachments"]] == want
    bob.send(type="history", room=room, ref="h")
    page = bob.wait(lambda f: f.get("type") == "history" and f.get("ref") == "h", "history")
    assert [m["attachments"] for m in page["messages"] if m["id"] == ack["id"]] == [want]

    # Served to any signed-in user who has the id: the bytes, the stored type,
    # never sniffed, never run.
    for host in (a,):
        got = http_request(host.port, up["url"], headers={"Authorization": f"Bearer {token(BOB)}"})
        assert (got.status, got.body) == (200, image)
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-disposition"] == "inline; filename=\"red dot.png\"; filename*=UTF-8''red%20dot.png"
        assert "sandbox" in got.headers["content-security-policy"]
    got = http_request(a.port, pdf["url"], headers={"Authorization": f"Bearer {token(BOB)}"})
    assert got.headers["content-disposition"].startswith("attachment; ") and got.body == PDF
    head = http_request(a.port, up["url"], method="HEAD", headers={"Authorization": f"Bearer {token(BOB)}"})
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", str(len(image)))
    stored = {f["_id"]: f for f in files(ctx)}
    assert set(stored) == {up["id"], pdf["id"]}
    assert stored[up["id"]]["metadata"] == {"userId": ALICE, "contentType": "image/png"}
    m = a.metrics()
    assert (m.total("aurora_ingest_uploads_total"), m.total("aurora_ingest_upload_bytes_total")) == (
        2, len(image) + len(PDF))
    for c in (alice, bob, late):
        c.close()


def test_bad_uploads_are_refused_with_nothing_stored(ctx, hosts):
    a = uploads_host(ctx, hosts, upload_max_bytes=4096, upload_types=["image/png", "image/jpeg", "text/plain"])
    cases = [
        ("a PNG declared as JPEG", dict(data=png(), ctype="image/jpeg"), 415, "not image/jpeg as declared"),
        ("HTML", dict(data=b"<!DOCTYPE html><script>alert(1)</script>", ctype="text/plain"), 415, "HTML"),
        ("HTML after a BOM and spaces", dict(data=b"\xef\xbb\xbf \n<html><body>x", ctype=None), 415, "HTML"),
        ("SVG", dict(data=b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', ctype="image/svg+xml"),
         415, "HTML"),
        ("unknown bytes", dict(data=b"\x00\x01\x02\x03binary", ctype=None), 415, "not a type"),
        ("a PDF, not in upload_types", dict(data=PDF), 415, "application/pdf is not accepted"),
        ("an empty body", dict(data=b""), 400, "empty"),
        ("no name", dict(data=png(), name=None), 400, "'name'"),
        ("a name with a control character", dict(data=png(), name="a%07b.png"), 400, "control"),
        ("a name that is a path to nothing", dict(data=png(), name="dir/"), 400, "file name"),
        ("a 300-byte name", dict(data=png(), name="x" * 300), 400, "255"),
        ("over upload_max_bytes", dict(data=b"a" * 4097), 413, "too large"),
        ("no token", dict(data=png(), auth=""), 401, "missing bearer token"),
        ("a bad token", dict(data=png(), auth="Bearer not.a.token"), 401, "invalid token"),
        ("an expired token", dict(data=png(), auth="Bearer " + token(ALICE, exp=int(time.time()) - 3600)), 401,
         "invalid token"),
        ("an anonymous user", dict(data=png(), user="anon-1234"), 403, "anonymous"),
    ]
    for what, kw, status, text in cases:
        r = upload(a, **kw)
        assert (r.status, text in r.json()["error"]) == (status, True), (what, r.status, r.body)
    # Chunked past the limit, and a client that closes halfway through.
    with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
        s.sendall(b"POST /api/uploads?name=x.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  token(ALICE).encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  b"".join(b"800\r\n" + b"t" * 2048 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    with socket.create_connection(("127.0.0.1", a.port), timeout=10) as s:
        s.sendall(b"POST /api/uploads?name=x.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\nAuthorization: "
                  b"Bearer " + token(ALICE).encode() + b"\r\n\r\n" + b"half")
    ok = upload(a, "text, caf\u00e9\n".encode(), name="notes.txt", ctype="text/plain; charset=utf-8")
    assert ok.status == 201 and ok.json()["fileType"] == "text/plain", ok.body
    assert [f["_id"] for f in files(ctx)] == [ok.json()["id"]]  # only the good one
    served = http_request(a.port, ok.json()["url"], headers={"Authorization": f"Bearer {token(BOB)}"})
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.headers["content-disposition"].startswith("attachment; filename=\"notes.txt\"")
    assert a.metrics().total("aurora_ingest_upload_rejected_total") >= len(cases) - 1  # 413s before the plugin
    assert a.running()


def test_quota_per_user(ctx, hosts):
    a = uploads_host(ctx, hosts, upload_quota_bytes=10000)
    assert upload(a, b"a" * 6000, name="one.txt").status == 201
    over = upload(a, b"b" * 6000, name="two.txt")
    assert over.status == 413 and "quota" in over.json()["error"] and "6000 of 10000" in over.json()["error"]
    assert upload(a, b"c" * 4000, name="three.txt").status == 201  # exactly to the quota
    assert upload(a, b"d" * 6000, name="bob.txt", user=BOB).status == 201  # another user's own
    assert sorted(f["length"] for f in files(ctx)) == [4000, 6000, 6000]


def test_downloads_need_a_token_and_an_id_that_exists(ctx, hosts):
    a = uploads_host(ctx, hosts)
    up = upload(a, png(), name="p.png").json()
    auth = {"Authorization": f"Bearer {token(BOB)}"}
    assert http_request(a.port, up["url"]).status == 401
    assert http_request(a.port, up["url"], headers={"Authorization": "Bearer x"}).status == 401
    for bad in ("0" * 32, up["id"].upper(), up["id"][:-1], up["id"] + "0", "../" + up["id"], "%00", ""):
        r = http_request(a.port, "/api/uploads/" + bad, headers=auth)
        assert r.status in (400, 404), (bad, r.status, r.body)
    assert http_request(a.port, up["url"], headers=auth).status == 200


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def test_every_method_with_and_without_a_body_on_the_upload_routes(ctx, hosts):
    a = uploads_host(ctx, hosts, upload_max_bytes=8192)
    up = upload(a, png(), name="p.png").json()
    auth = {"Authorization": f"Bearer {token(ALICE)}"}
    expect = {  # (target, method) -> status without a body
        ("/api/uploads", "POST"): 400,  # empty
        (up["url"], "GET"): 200, (up["url"], "HEAD"): 200,
    }
    for target in ("/api/uploads", up["url"], "/api/uploads/"):
        for method in METHODS:
            for body in (b"", b"0123456789", b"x" * 20000):
                r = http_request(a.port, target + ("?name=b.txt" if method == "POST" else ""), method=method,
                                 body=body or None, headers={**auth, **({"Content-Length": str(len(body))} if body else {})})
                what = f"{method} {target} with {len(body)} bytes"
                if len(body) > 8192 and (target, method) == ("/api/uploads", "POST"):
                    assert r.status == 413, what
                elif len(body) > 65536:
                    assert r.status == 413, what
                elif (target, method) == ("/api/uploads", "POST"):
                    assert r.status == (201 if body else 400), (what, r.status, r.body)
                elif method == "OPTIONS" or (target == "/api/uploads/" and method in ("GET", "HEAD")):
                    assert r.status == 404, (what, r.status)  # no CORS preflight route; no id
                elif (target, method) in expect:
                    assert r.status == expect[(target, method)], (what, r.status, r.body)
                else:
                    assert r.status == 405 and r.headers.get("allow") in ("GET", "POST"), (what, r.status, r.body)
                if method == "HEAD":
                    assert r.body == b"", what
    assert a.running()


def test_attaching_needs_your_own_upload_and_bad_attachments_store_nothing(ctx, hosts):
    room = unique_room()
    a = uploads_host(ctx, hosts)
    mine = upload(a, png(), name="mine.png", user=ALICE).json()
    theirs = upload(a, png(), name="theirs.png", user=BOB).json()
    gone = upload(a, png(), name="gone.png", user=ALICE).json()
    ctx.r.delete("chat:upload:" + gone["id"])  # as after upload_attach_s
    alice = in_room(a, ALICE, room)
    before = ctx.r.xlen(ctx.stream) if ctx.r.exists(ctx.stream) else 0
    cases = [
        ([theirs["id"]], "bad_attachment", "not your upload"),
        ([gone["id"]], "bad_attachment", "too old to attach"),
        (["f" * 32], "bad_attachment", "not an upload"),
        ([mine["id"], mine["id"]], "bad_attachment", "different"),
        ([mine["id"].upper()], "bad_attachment", "hex"),
        (["../../etc/passwd"], "bad_attachment", "hex"),
        ([{"id": mine["id"]}], "bad_attachment", "hex"),
        ([mine["id"]] + ["%032x" % i for i in range(10)], "bad_field", "at most 10"),
        (mine["id"], "bad_field", "array"),
        ([], "bad_field", "not empty"),
    ]
    for attachments, code, text in cases:
        answer = alice.ask(type="message", room=room, text="x", attachments=attachments)
        assert (answer["type"], answer.get("code"), text in answer.get("message", "")) == ("error", code, True), (
            attachments, answer)
    assert alice.ask(type="message", room=room, text="")["code"] == "empty"  # no text, no attachment
    assert (ctx.r.xlen(ctx.stream) if ctx.r.exists(ctx.stream) else 0) == before
    ok = alice.ask(type="message", room=room, text="with", attachments=[mine["id"]], )
    assert ok["type"] == "ack"
    # Anonymous connections cannot attach.
    anon = in_room(a, "anon-77", room)
    assert anon.ask(type="message", room=room, text="x", attachments=[mine["id"]])["code"] == "unauthorized"
    assert ctx.r.xlen(ctx.stream) == before + 1
    entry = ctx.r.xrange(ctx.stream, ok["id"], ok["id"])[0][1]
    assert json.loads(entry["attachments"])[0]["id"] == mine["id"]
    for c in (alice, anon):
        c.close()


@pytest.mark.parametrize("value", ["not json", "{}", "[1]", '[{"id":"x"}]', "[" + ",".join(['{}'] * 11) + "]"])
def test_a_poison_attachments_field_is_dead_lettered_and_replayed_without_it(ctx, hosts, value):
    """An entry another producer wrote: ingest dead-letters it (it can never
    be stored as the schema says); resume replays the message without the
    field, never as broken JSON."""
    room = unique_room()
    a = uploads_host(ctx, hosts)
    sid = ctx.r.xadd(ctx.stream, {"roomId": room, "userId": ALICE, "username": "u", "text": "t",
                                  "attachments": value})
    wait_for(lambda: any(e[1].get("originalId") == sid for e in ctx.r.xrange(ctx.dead)), "the dead letter", timeout=15)
    # Resume replays up to what this replica has seen live: one message after it.
    alice = in_room(a, ALICE, room)
    assert alice.ask(type="message", room=room, text="after")["type"] == "ack"
    c = Client(a, BOB)
    c.send(type="resume", room=room, since="0-0", ref="r")
    got = c.wait(lambda f: f.get("type") == "message" and f.get("id") == sid, "the replay")
    assert "attachments" not in got and got["text"] == "t"
    for client in (alice, c):
        client.close()


def test_a_large_file_round_trips_in_chunks(ctx, hosts):
    """3 MiB through GridFS: 13 chunks of 255 KiB, the same bytes back."""
    a = uploads_host(ctx, hosts)
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (3 * 4096) + b"tail"
    up = upload(a, body, name="big.png")
    assert up.status == 201, up.body
    chunks = ctx.mongo[ctx.db]["uploads.chunks"]
    assert chunks.count_documents({"files_id": up.json()["id"]}) == -(-len(body) // (255 * 1024))
    got = http_request(a.port, up.json()["url"], headers={"Authorization": f"Bearer {token(BOB)}"}, timeout=30)
    assert (got.status, len(got.body), got.body == body) == (200, len(body), True)


def test_an_upload_redis_cannot_describe_is_removed(ctx, hosts):
    """Stored, then Redis refuses the description: the file is removed and
    the upload answered 503, never left unattachable."""
    from aurora_host import free_port
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    plugins = [{"name": "probe", "path": require(PROBE)},
               ctx.ingest_plugin(workers=0, history=True, uploads=True, redis_timeout_ms=500)]
    a = hosts(ctx.host_config(plugins, redis={"url": dead_redis}), "no-redis")
    wait_for(lambda: a.get("/ready").status == 200, "ready", timeout=20)
    r = upload(a, png(), name="p.png")
    assert r.status == 503 and "unavailable" in r.json()["error"], (r.status, r.body)
    assert files(ctx) == [] and ctx.mongo[ctx.db]["uploads.chunks"].count_documents({}) == 0


def test_a_frozen_store_answers_503_in_bounded_time_and_keeps_nothing(redis_server, private_mongo, hosts):
    """FerretDB frozen (SIGSTOP): an upload is answered 503 within the
    operation deadlines instead of hanging a thread for ever; thawed, the
    next upload works and the frozen one is no file: never listed, served
    or counted. Its one chunk may still land once the store thaws (a write
    whose answer timed out; docs/ingest.md says so): at most that one."""
    import signal
    ctx = Ctx(redis_server, private_mongo)
    try:
        a = uploads_host(ctx, hosts, upload_quota_bytes=0, mongo_op_timeout_ms=1500)
        assert upload(a, png(), name="before.png").status == 201
        private_mongo.proc.proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = upload(a, png(), name="frozen.png", timeout=60)
            took = time.monotonic() - t0
        finally:
            private_mongo.proc.proc.send_signal(signal.SIGCONT)
        assert r.status == 503, (r.status, r.body)
        assert took < 20, took  # a few operation deadlines (1.5 s each), not for ever
        after = upload(a, png(), name="after.png")
        assert after.status == 201
        names = sorted(f["filename"] for f in files(ctx))
        assert names == ["after.png", "before.png"], names
        ids = [f["_id"] for f in files(ctx)]
        assert ctx.mongo[ctx.db]["uploads.chunks"].count_documents({"files_id": {"$nin": ids}}) <= 1
        assert a.metrics().total("aurora_ingest_uploads_total") == 2
    finally:
        ctx.close()

