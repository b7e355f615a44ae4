#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<harness>/seed-*.

The seeds come from docs/protocol.md, docs/configuration.md, samples/config
and the unit tests; the JWT seeds are signed with the harness's fixed
secret. Re-run after changing a harness's input format:

    python3 tests/fuzz/make_corpus.py

It replaces every seed-* file and leaves regression-* files (crashes the
fuzzers found, kept as regression inputs) alone. Standard library only.
"""
import base64
import hashlib
import hmac
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
JWT_SECRET = b"aurora-fuzz-secret-32-bytes-long"  # fuzz_jwt_verify.cpp's kSecret


def write(harness, seeds):
    d = CORPUS / harness
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, s in enumerate(seeds):
        (d / f"seed-{i:03d}").write_bytes(s if isinstance(s, bytes) else s.encode())


# ---- HTTP heads (front door) ----------------------------------------------------
def http_heads():
    up = ("GET /ws HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    return [
        up + "\r\n",
        up + "Sec-WebSocket-Protocol: aurora.ndjson, Bearer.eyJhbGciOiJIUzI1NiJ9.e30.c2ln\r\n\r\n",
        up + "Sec-WebSocket-Protocol: Bearer.abc\r\nSec-WebSocket-Protocol: aurora\r\n\r\n",
        up + "Authorization: Bearer abc.def.ghi\r\nOrigin: http://localhost:8000\r\n\r\n",
        "GET /ws?token=a%2Bb&x=1 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
        "Connection: keep-alive, Upgrade\r\n\r\n",
        "GET /ws?token=a+b%20c&token=second&empty=&flag HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /metrics HTTP/1.0\r\n\r\n",
        "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 44\r\n"
        "X-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n\r\n",
        "GET /api/rooms/general/messages?before=1700000000000-0&limit=50 HTTP/1.1\r\n"
        "Authorization: Bearer x.y.z\r\n\r\n",
        "GET /js/chat.js?v=%41%62%xz HTTP/1.1\r\nAccept:   text/html \t\r\n\r\n",
        "GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET relative HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nX: y\r\n", "GET /a b HTTP/1.1\r\n\r\n", "GET /?q=%00 HTTP/1.1\r\n\r\n",
    ]


# ---- WebSocket frames -------------------------------------------------------------
def frame(opcode, payload, fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0, length=None):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n <= 0xFFFF:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def ws_input(stream, limit_index=4, chunk=7, cut=3):
    # FuzzedDataProvider takes integers from the end: limit (1 byte), chunk
    # (1 byte, 1 + b % 64), cut (2 bytes); the frames are what remains in front.
    return stream + struct.pack("<H", cut) + bytes([chunk - 1, limit_index])


def ws_frames():
    hello = json.dumps({"type": "message", "room": "general", "text": "héllo 😀"}).encode()
    seeds = [
        frame(1, hello),
        frame(1, b'{"type":"join"', fin=False) + frame(9, b"ping") + frame(0, b',"room":"x"}'),
        frame(2, b"\x00\x01\x02") + frame(10, b"") + frame(8, struct.pack(">H", 1000) + b"bye"),
        frame(1, b"") + frame(1, b"a" * 200) + frame(1, b"b" * 70000),
        frame(1, "żółć".encode()[:3], fin=False) + frame(0, "żółć".encode()[3:]),
        frame(1, b"\xed\xa0\x80") + frame(1, b"\xc0\xaf") + frame(1, b"\xf4\x90\x80\x80"),
        frame(1, b"x", rsv=0x40), frame(3, b""), frame(9, b"x" * 126), frame(9, b"", fin=False),
        frame(0, b"orphan"), frame(1, b"a", fin=False) + frame(1, b"b"),
        bytes([0x81, 0x05]) + b"hello",  # unmasked
        bytes([0x81, 0xFE, 0x00, 0x10]) + b"\0\0\0\0" + b"x" * 16,  # 16-bit length under 126
        bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 63) + b"\0\0\0\0",
    ]
    out = []
    for i, s in enumerate(seeds):
        out.append(ws_input(s, limit_index=(4 + i) % 9, chunk=1 + (i * 13) % 64, cut=i * 5))
    out.append("héllo wörld ✓ 𝄞".encode())
    out.append(b"\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xc2\x80")
    return out


# ---- frames the host classifies, and the chat plugin reads -------------------------
CLIENT_FRAMES = [
    '{"text":"hello"}',
    '{"type":"message","text":"hi there","room":"general","ref":"c-1"}',
    '{"type":"message","text":"hé 😀 \\u00e9 \\ud83d\\ude00","ref":42}',
    '{"type":"join","room":"dev.team:ops-1","ref":"j1"}',
    '{"type":"leave","room":"general"}',
    '{"type":"resume","room":"general","since":"1700000000000-0"}',
    '{"type":"resume","room":"general","since":"1700000000000"}',
    '{"type":"typing","room":"general","ref":7}',
    '{"type":"read","room":"general","id":"1700000000000-5"}',
    '{"type":"presence","room":"general","ref":"p"}',
    '{"type":"history","room":"general","before":"1700000000000-0","limit":50}',
    '{"type":"echo","payload":[1,2,{"a":null}]}',
    '{"type":"join","room":"bad room!"}',
    '{"type":"message","text":""}',
    '{"type":"message","text":"a\\u0000b"}',
    '{"type":"read","id":"18446744073709551616-0"}',
    '{"type":"message","text":"\\ud800"}',
    '{"type":1}', '{"ref":{"x":1},"type":"join"}', '{"room":"x"}', '[1,2,3]', '"text"', '{"type":"message"',
    '{"type":"message","text":"x"} trailing', '{"type":"message","text":"x"}  \n',
]


def chat_requests():
    presence = "\n".join([
        '{"userId":"u1","user":"alice","conn":"c1"}',
        '{"userId":"u1","user":"alice","conn":"c2"}',
        '{"conn":"c3","user":"bob","userId":"u2"}',
        '{"userId":"u\\"3","user":"e\\\\v"}',
    ])
    envelope = ('{"type":"message","id":"1700000000000-3","room":"general","user":"alice","userId":"u1",'
                '"text":"hi","ts":1700000000000,"ref":"r"}')
    # Text that is not UTF-8 (from Redis, never from a client): the builders
    # write U+FFFD for its bad bytes (found by this harness).
    not_utf8 = b'{"text":"hi\xab"}'
    changes = ['{"type":"edit","id":"1700000000000-3","text":"fixed","ref":"e1"}',
               '{"type":"delete","room":"general","id":"1700000000000-3","moderator":true}',
               '{"type":"react","id":"1700000000000-3","emoji":"\\ud83d\\udc4d\\ud83c\\udffd","op":"remove"}',
               '{"type":"react","id":"1-0","emoji":"\U0001F468\u200d\U0001F469\u200d\U0001F467"}',
               '{"type":"react","id":"1-0","emoji":"1\ufe0f\u20e3"}',
               '{"type":"react","id":"1-0","emoji":"\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"}',
               '{"type":"reaction","id":"1700000000000-4","room":"general","target":"1700000000000-3","user":"a",'
               '"userId":"u","emoji":"x","op":"add","ts":1700000000000}']
    return CLIENT_FRAMES + [presence, envelope, not_utf8, "1700000000000-18", "0-0", "-1", "007-0", "1-"] + changes


# ---- configuration --------------------------------------------------------------------
def host_configs():
    seeds = [p.read_text() for p in sorted((ROOT / "samples" / "config").glob("*.json"))]
    seeds += [
        json.dumps({"listen": {"host": "0.0.0.0", "port": 0}, "workers": 1, "web_root": "web",
                    "jwt": {"secret": "x" * 40}, "log": {"level": "debug", "format": "json"},
                    "allow_anonymous": True, "trusted_proxies": ["::1", "10.0.0.0/8"],
                    "limits": {"max_frame_bytes": 65536, "hard_max_frame_bytes": 1048576,
                               "send_queue_max_bytes": 4194304, "send_queue_max_frames": 4096,
                               "max_rooms_per_conn": 32, "http_max_body_bytes": 65536,
                               "http_body_timeout_ms": 10000, "max_connections": 50000,
                               "max_pending_per_conn": 64, "frames_per_s": 100, "frames_burst": 200,
                               "frame_budgets": {"join": {"per_s": 5, "burst": 20}, "custom": {"per_s": 0, "burst": 1}}},
                    "heartbeat": {"ping_interval_s": 30, "timeout_s": 10}, "shutdown_grace_ms": 3000,
                    "plugin_path": "plugins",
                    "plugins": [{"name": "echo", "path": "./echo.so", "config": {"a": [1, {"b": None}]}}]}),
        '{"workers": 2, "listen": {"port": 0}}',
        '{"workers": 1e300}', '{"listen": {"port": -1}}', '{"limits": {"max_frame_bytes": 1.5}}',
        '{"plugins": [{"name": "a"}, {"name": "a"}]}', '{"plugins": [{"name": "Bad-Name"}]}',
        '{"redis": {"url": "http://x"}}', '{"unknown": 1}', '{"listen": {}, "listen": {}}',
        '{"trusted_proxies": ["10.0.0.0/33", 5]}', '{"log": {"level": "loud"}}', '[]', '', '{',
    ]
    return seeds


def plugin_settings():
    chat = {"default_room": "general", "auto_join": True, "max_rooms": 32, "stream_maxlen": 1000000,
            "unbounded": -5, "ratio": 0.25, "any_number": -1e10, "types": ["message", "typing"],
            "required": "x"}
    ratelimit = {"redis_url": "", "redis_timeout_ms": 200, "key_prefix": "rate", "default_room": "general",
                 "message_types": ["message"], "control_types": ["typing", "presence", "resume"],
                 "room_max": 3, "room_window_ms": 1000, "user_max": 10, "user_window_ms": 1000,
                 "control_max": 10, "control_window_ms": 1000, "connect_max": 30, "connect_window_ms": 60000,
                 "abuse_max": 20, "abuse_window_ms": 10000, "on_redis_error": "deny",
                 "on_redis_error_connect": "allow", "anonymous_key": "address", "max_batch": 1024}
    auth = {"dev_mode": False, "jwt_algorithm": "HS256", "token_ttl_s": 86400, "leeway_s": 30,
            "query_token": True, "password_scheme": "yescrypt", "bcrypt_cost": 10, "yescrypt_cost": 5,
            "workers": 4, "max_queue": 1024, "max_pending_per_addr": 8, "users_collection": "users",
            "login_window_ms": 900000, "login_failures_before_backoff": 5, "login_backoff_base_ms": 1000,
            "login_backoff_max_ms": 900000, "login_max_failures_per_addr": 50, "register_window_ms": 600000,
            "register_max_per_addr": 10, "register_max_concurrent": 1, "register_max_queue": 64,
            "max_connections_per_user": 10, "connection_ttl_s": 60,
            "cors_origins": ["http://localhost:8000", "https://chat.example.com"], "redis_prefix": "auth:"}
    ingest = {"stream": "chat:messages", "group": "mongo_workers", "dead_letter_stream": "chat:messages:dead",
              "collection": "messages", "consumer_name": "", "workers": 2, "batch": 500, "block_ms": 5000,
              "claim_idle_ms": 30000, "claim_interval_ms": 5000, "max_deliveries": 5, "backoff_initial_ms": 100,
              "backoff_max_ms": 5000, "mongo_timeout_ms": 2000, "redis_timeout_ms": 2000,
              "stats_interval_ms": 1000, "secondary_indexes": True, "history": True, "history_workers": 2,
              "history_default_limit": 50, "history_max_limit": 100, "history_max_queue": 1024,
              "jwt_algorithm": "HS512", "leeway_s": 30}
    seeds = []
    for sel, cfg in ((0, ratelimit), (1, auth), (2, dict(auth, dev_mode=True, cors_origins=["*"])),
                     (3, ingest), (4, chat)):
        seeds.append(bytes([sel]) + json.dumps(cfg).encode())
        seeds.append(bytes([sel]) + b"{}")
    seeds += [b"\x00" + b'{"room_max": 1e300, "message_types": ["a"], "control_types": ["a"]}',
              b"\x01" + b'{"workers": 1, "register_max_concurrent": 2, "cors_origins": [""]}',
              b"\x03" + b"mongodb://host/db?connectTimeoutMS=5",
              b"\x04" + b'{"unbounded": 1e19, "required": "y"}',
              b"\x04" + b'{"max_rooms": 2.5}', b"\x04" + b'{"types": [1]}', b"\x04" + b"[]"]
    return seeds


# ---- auth REST bodies -------------------------------------------------------------------
def auth_bodies():
    return [
        '{"username":"alice","password":"correct horse"}',
        '{"username":"bob_1.x-y","password":"12345678"}',
        '{"username":"alice","password":{"$ne":null}}',
        '{"username":"al","password":"12345678"}',
        '{"username":"alice","password":"short"}',
        '{"username":"alice","password":"longenough\\u0000"}',
        '{"username":"alice"}', '{"username":null,"password":""}', '[]', 'not json',
        '{"username":"\\u0061lice","password":"p\\u00e4ssw\\u00f6rd\\ud83d\\ude00"}',
        '{"username":"alice","password":"' + "x" * 129 + '"}',
        '{"username":"alice","password":"' + "x" * 4200 + '"}',
    ]


# ---- JWTs ----------------------------------------------------------------------------------
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, alg="HS256", header=None):
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    h = header if header is not None else json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":"))
    c = claims if isinstance(claims, str) else json.dumps(claims, separators=(",", ":"))
    signing = b64(h.encode()) + "." + b64(c.encode())
    return signing + "." + b64(hmac.new(JWT_SECRET, signing.encode(), digest).digest())


def jwt_inputs():
    ok = {"userId": "507f1f77bcf86cd799439011", "username": "alice", "iat": 1699990000, "exp": 4102444800}
    tokens = [
        jwt(ok), jwt(dict(ok, nbf=1699999000)), jwt(dict(ok, exp=1699999990)), jwt(dict(ok, exp=1600000000)),
        jwt(dict(ok, nbf=1800000000)), jwt(ok, alg="HS384"), jwt(ok, alg="HS512"),
        jwt({"userId": "", "username": "x", "exp": 4102444800}), jwt({"userId": 5, "username": "x", "exp": 4102444800}),
        jwt({"userId": "u", "username": "x", "exp": "4102444800"}), jwt({"userId": "u", "username": "x"}),
        jwt(ok, header='{"alg":"none","typ":"JWT"}').rsplit(".", 1)[0] + ".",
        jwt(ok)[:-2] + "AA", "a.b", "a.b.c.d", "", "eyJ.eyJ.",
    ]
    seeds = [b"\x00" + t.encode() for t in tokens]
    claims = [ok, dict(ok, nbf=1699999000), dict(ok, exp=9e15), dict(ok, exp=1e300), dict(ok, exp=-9e15),
              dict(ok, exp=4102444800.5), {"exp": 4102444800}, {}]
    for i, c in enumerate(claims):
        seeds.append(b"\x01" + bytes([i % 3]) + json.dumps(c).encode())
    seeds.append(b"\x01\x00" + b'{"userId":"u","username":"x","exp":4102444800,"exp":1}')
    seeds.append(b"\x01\x00[1,2]")
    seeds.append(b"\x02" + b'{"alg":"HS256","typ":"JWT","kid":"k1"}\n' + json.dumps(ok).encode())
    seeds.append(b"\x02" + b'{"alg":"none"}\n' + json.dumps(ok).encode())
    seeds.append(b"\x02" + b'{"typ":"JWT"}\n' + json.dumps(ok).encode())
    return seeds


# ---- Redis stream replies -----------------------------------------------------------------------
def resp(x):
    if x is None:
        return b"*-1\r\n"
    if isinstance(x, int):
        return b":%d\r\n" % x
    if isinstance(x, (bytes, str)):
        b = x.encode() if isinstance(x, str) else x
        return b"$%d\r\n%s\r\n" % (len(b), b)
    return b"*%d\r\n" % len(x) + b"".join(resp(e) for e in x)


def fdp_structured(entries):
    """An input for fuzz_stream_entry's structured mode: strings from the
    front (ConsumeRandomLengthString: a backslash and any other byte end
    one), type and count bytes from the back."""
    front, back = bytearray(), []

    def string(s):
        front.extend(s.replace(b"\\", b"\\\\") + b"\\x")
        back.append(0)  # element type: a string

    for eid, fields in entries:
        string(eid)
        if fields is None:
            back.append(0)  # shape < 8: nil fields (deleted)
        else:
            back.append(16)
            back.append(len(fields))  # count: b % 13
            for f in fields:
                string(f)
    return b"\x00" + bytes(front) + bytes(reversed(back))


def stream_entries():
    good = ["roomId", "general", "userId", "507f1f77bcf86cd799439011", "username", "alice",
            "text", "hello", "ref", "c-1"]
    readgroup = [["chat:messages", [["1700000000000-0", good],
                                    ["1700000000001-0", ["roomId", "r", "userId", "anonymous-1", "text", "x"]],
                                    ["1700000000002-1", None],
                                    ["0-0", good], ["bad-id", good]]]]
    autoclaim = ["0-0", [["1700000000000-0", good], ["1700000000003-0", None]], ["1700000000004-0"]]
    changes = [["chat:messages", [
        ["1700000000005-0", ["roomId", "general", "userId", "507f1f77bcf86cd799439011", "username", "alice",
                             "kind", "edit", "target", "1700000000000-0", "text", "fixed"]],
        ["1700000000005-1", ["roomId", "general", "userId", "some-sub", "kind", "reaction",
                             "target", "1700000000000-0", "emoji", "x", "op", "remove"]],
        ["1700000000006-0", ["roomId", "general", "userId", "507f1f77bcf86cd799439011", "kind", "delete",
                             "target", "nope"]],
        ["1700000000007-0", ["kind", "move", "roomId", "g", "userId", "u", "target", "1-0"]]]]]
    return [b"\x01" + resp(changes)] + [
        b"\x01" + resp(readgroup), b"\x01" + resp(autoclaim), b"\x01" + resp(None),
        b"\x01" + resp([["chat:messages", []]]), b"\x01" + resp([["s", [["1-1", ["roomId", 5, "text"]]]]]),
        b"\x01" + b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n$-1\r\n",
        b"\x01" + b"-ERR no such key\r\n" + b"+OK\r\n",
        fdp_structured([(b"1700000000000-0", [g.encode() for g in good]),
                        (b"1700000000002-1", None),
                        (b"1-1", [b"roomId", b"r\x00oom", b"userId", b"507F1F77BCF86CD799439011", b"text", b"\xff\xfe"])]),
    ]


# ---- permessage-deflate: offers, then bytes to inflate ----------------------------------------------
def deflate_inputs():
    import zlib

    def raw(data):
        c = zlib.compressobj(wbits=-15)
        return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]

    offers = ["permessage-deflate", "permessage-deflate; client_max_window_bits",
              "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
              "x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover",
              'permessage-deflate; server_max_window_bits="8"', "permessage-deflate; unknown, permessage-deflate",
              "permessage-deflate; client_max_window_bits=15; server_max_window_bits=15"]
    payloads = [raw(json.dumps({"type": "message", "room": "general", "text": "hello " * 20}).encode()),
                b"\xf2\x48\xcd\xc9\xc9\x07\x00", b"", raw(b"\0" * 100000), b"\xff\xff garbage", raw(b"\xff\xfe")]
    # FuzzedDataProvider: the bool and the bound come from the end, the offer
    # (up to a backslash-escaped end) from the front, the bytes after it.
    return [o.encode() + b"\\n" + p + b"\x00\x40\x01" for o in offers for p in payloads]


# ---- static paths --------------------------------------------------------------------------------
def static_paths():
    return ["/", "/index.html", "/a.txt", "/sub/", "/sub", "/sub/b.js", "/sub/up/a.txt", "/sub/up/sub/b.js",
            "/empty/", "/out/secret.txt", "/out/", "/secret.txt", "/trap/", "/trap", "/loop", "/loop/x",
            "/../outside/secret.txt", "/sub/../a.txt", "//a.txt", "/a.txt/", "/./a.txt", "/sub\\..\\a.txt",
            "/a.txt\x00.html", "/nothing", "relative"]


# ---- rooms requests ------------------------------------------------------------------------------
def rooms_requests():
    return [
        "GET /api/rooms\n", 'POST /api/rooms\n{"room":"plans","visibility":"private","title":"Plans","topic":"q3"}',
        'PATCH /api/rooms/plans\n{"topic":"new","archived":true}', 'POST /api/rooms/plans/members\n{"username":"bob"}',
        'PATCH /api/rooms/plans/members/64b000000000000000000001\n{"role":"admin","username":"x"}',
        "DELETE /api/rooms/plans/members/64b000000000000000000001\n", "POST /api/rooms/plans/leave\n",
        'POST /api/dms\n{"username":"bob","type":"x","ref":1}', "POST /api/rooms\n[1,2]", "POST /api/rooms\n{not json",
        "GET /api/rooms//members\n", "PUT /api/rooms/a/b/c/d/e\n{}", "POST /api/rooms/\u00e9t\u00e9/members\n{}",
        "title with a \u0007 bell", "caf\u00e9 \u2013 \u65e5\u672c", "nbsp\u00a0and nel\u0085",
    ]


# ---- An identity provider's key sets (fuzz_token_keys) ------------------------------------------
# Public keys generated once for these seeds (no private part exists anywhere).
RSA_JWK = {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": "zrkUcrE9M9wTb3vxs4pH-n0ePrguwnbnYBI-Chm7MmMkSy2qhM3rSAERi0e92fgJqhdKIe5QutUfZoduKDoezKRU2ZEfgwweKaMRJ1ncoGD1rkTAPwyuAuMSUdrDFq-tyHFKkSGvlBzaEu0RDJJADrGYbaBdan-Hqfv2ET91PE0yWASwSDvVMMQQ73-s-2hBOJGc3o517Tpe5LvmGiF1-D5HbXUnUyBBGqPjiZcZFUuvf3IDEIG0FGxOjAkaWvU8HYiKcLRqgQJpauYja6GGs0CeCxGKjSgFHtY_xUdp6wA0y22uACtClqtlWgxk9nWLC2mutD-8nx765pMlEj70Ww", "e": "AQAB"}
EC_JWK = {"kty": "EC", "kid": "e1", "crv": "P-256", "x": "ttflj7Q3M45PrIpl1I_WRj2pyps9FgRfIVG_rkXtWog", "y": "Ay9lu3_QFwg3JNtVQquDWzp5aBb0gslx73zuxPKa1wc"}
RSA_PEM = ("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzrkUcrE9M9wTb3vxs4pH\n"
           "+n0ePrguwnbnYBI+Chm7MmMkSy2qhM3rSAERi0e92fgJqhdKIe5QutUfZoduKDoe\n"
           "zKRU2ZEfgwweKaMRJ1ncoGD1rkTAPwyuAuMSUdrDFq+tyHFKkSGvlBzaEu0RDJJA\n"
           "DrGYbaBdan+Hqfv2ET91PE0yWASwSDvVMMQQ73+s+2hBOJGc3o517Tpe5LvmGiF1\n"
           "+D5HbXUnUyBBGqPjiZcZFUuvf3IDEIG0FGxOjAkaWvU8HYiKcLRqgQJpauYja6GG\n"
           "s0CeCxGKjSgFHtY/xUdp6wA0y22uACtClqtlWgxk9nWLC2mutD+8nx765pMlEj70\n"
           "WwIDAQAB\n-----END PUBLIC KEY-----\n")


def key_sets():
    enc = dict(RSA_JWK, use="enc", kid="r2")
    return [
        json.dumps({"keys": [RSA_JWK, EC_JWK]}), json.dumps({"keys": [RSA_JWK]}), json.dumps({"keys": [EC_JWK, enc]}),
        json.dumps({"keys": [RSA_JWK, RSA_JWK]}), json.dumps({"keys": [dict(EC_JWK, crv="P-384")]}),
        json.dumps({"keys": [dict(EC_JWK, y="AAAA" + EC_JWK["y"][4:])]}), json.dumps({"keys": [dict(RSA_JWK, alg="ES256")]}),
        json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}),
        json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), json.dumps({"keys": []}), '{"keys":{}}', "{",
        RSA_PEM, RSA_PEM + RSA_PEM, RSA_PEM.replace("PUBLIC KEY", "PRIVATE KEY"), RSA_PEM[:120], "",
    ]


# ---- What a backend sends the server API (fuzz_server_api) ---------------------------------------
# The first byte picks the reading: 0 a key set, 1 a request body, 2 a path segment / close reason.
def server_api_inputs():
    key = "k" * 40
    key_sets = [
        {"keys": [{"name": "backend", "key": key, "scopes": ["publish", "moderate", "read"], "rate_per_s": 50}]},
        {"keys": [{"name": "a", "key": key, "scopes": ["read"]}, {"name": "b", "key": "j" * 40, "scopes": ["publish"]}]},
        {"keys": [{"name": "a", "key": "short", "scopes": ["read"]}]}, {"keys": []}, {"keys": [1]},
        {"keys": [{"name": "a", "key": key, "scopes": ["read"], "rate_per_s": 0.1}]},
    ]
    bodies = [
        {"room": "general", "text": "hello", "user_id": "64b000000000000000000001", "username": "alice", "ref": "r1"},
        {"room": "general", "text": "x" * 4001}, {"rooms": ["a", "b", "c"], "text": "all", "ref": "m-1"},
        {"rooms": ["a", "a"], "text": "x"}, {"user_id": "u1", "reason": "spam", "duration_s": 3600},
        {"user_id": "anon-1"}, {"user_id": "u\u0085", "reason": "\u00e9" * 100}, {"user_id": "u", "duration_s": 1.5},
        {"room": "general", "text": "x", "username": "no id"}, {"rooms": [], "text": ""}, {},
    ]
    out = ["\x00" + json.dumps(k) for k in key_sets] + ["\x01" + json.dumps(b) for b in bodies]
    out += ["\x02" + t for t in ("a%2Fb%7Cc", "%00", "%zz", "caf\u00e9 " * 30, "\U0001F642" * 40, "plain")]
    return out


# ---- Uploads: bytes to sniff, file names (fuzz_upload_sniff) --------------------------------------
def uploads():
    return [
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\xff\xd8\xff\xe0\0\x10JFIF", b"GIF89a\x01\0\x01\0", b"GIF87a",
        b"RIFF\x24\0\0\0WEBPVP8 ", b"%PDF-1.7\n%", "plain text, caf\u00e9 \u65e5\u672c\n".encode(),
        b"<html><script>alert(1)</script>", b"\xef\xbb\xbf  <SVG onload=x>", b"\n\t<!-- c -->", b"<?xml version='1.0'?>",
        b"<b>bold</b>", b"<bogus>", b"a\x00b", b"\xc2\x85nel", b"\xff\xfe", b"", b"..", b"../../etc/passwd",
        b"C:\\Users\\x\\photo.png", "na\u00efve \"quoted\" name;.png".encode(), b"x" * 300,
    ]


def main():
    write("fuzz_http_head", http_heads())
    write("fuzz_ws_frames", ws_frames())
    write("fuzz_deflate", deflate_inputs())
    write("fuzz_frame_check", CLIENT_FRAMES)
    write("fuzz_static_path", static_paths())
    write("fuzz_host_config", host_configs())
    write("fuzz_plugin_settings", plugin_settings())
    write("fuzz_chat_request", chat_requests())
    write("fuzz_rooms_request", rooms_requests())
    write("fuzz_auth_credentials", auth_bodies())
    write("fuzz_jwt_verify", jwt_inputs())
    write("fuzz_token_keys", key_sets())
    write("fuzz_stream_entry", stream_entries())
    write("fuzz_server_api", server_api_inputs())
    write("fuzz_upload_sniff", uploads())
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} files")


if __name__ == "__main__":
    main()
