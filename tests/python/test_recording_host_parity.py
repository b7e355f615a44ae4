"""The recording host (aurora.Plugin) and aurora-host answer the same frames
the same way: the same plugin (echo) is driven through both with the same
cases, and every reply must match. The recording host shares the host's
frame check, error frame and room limit (bindings/python/core); this is the
test that they stay shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

import aurora
from aurora_host import AuroraHost  # tests/support
from aurora_py_support import built

MAX_ROOMS = 3

CASES = [
    {"type": "echo", "text": "hello", "ref": "a"},
    {"type": "echo", "text": "no ref"},
    {"type": "echo", "text": "\u00e9t\u00e9 \U0001f600", "ref": 12},
    {"type": "echo", "ref": 1.5},                     # echo's bad_field, with the ref
    {"type": "echo", "text": 5, "ref": "x"},
    {"type": "join", "room": "r1", "ref": "j1"},
    {"type": "join", "room": "", "ref": "j0"},        # echo refuses an empty room
    {"type": "join", "room": "r2"},
    {"type": "join", "room": "r3"},
    {"type": "join", "room": "r4", "ref": "over"},    # past max_rooms_per_conn: too_many_rooms
    {"type": "join", "room": "x" * 300},              # not a room name the host takes
]

# Frames aurora-host refuses itself: the recording host raises ValueError naming the code.
REFUSED = [
    ('{"room":"r1"}', "missing_type"),
    ('{"type":5,"ref":"t"}', "bad_field"),
    ('{"type":"echo","ref":{}}', "bad_field"),
    ("[1,2]", "not_object"),
    ("not json", "bad_json"),
    ('{"type":"echo","text":"a","text":"b"}', "bad_json"),
]


@pytest.fixture(scope="module")
def real_host(tmp_path_factory):
    cfg = {"log": {"level": "info", "format": "json"}, "allow_anonymous": True,
           "limits": {"max_rooms_per_conn": MAX_ROOMS},
           "plugins": [{"name": "echo", "path": built("echo"), "config": {"tick_ms": 0}}]}
    h = AuroraHost.start(Path(built("aurora-host")), tmp_path_factory.mktemp("parity"), cfg)
    yield h
    assert h.stop() == (0, False), h.stderr_tail()


def test_same_replies_as_aurora_host(real_host):
    with aurora.Plugin.load(built("echo"), {"tick_ms": 0}) as p:
        p.max_rooms_per_conn = MAX_ROOMS
        conn = p.connect()
        recorded = [p.message(conn, frame).reply for frame in CASES]
    with connect(real_host.ws_url + "/", open_timeout=5) as ws:
        live = []
        for frame in CASES:
            ws.send(json.dumps(frame))
            live.append(json.loads(ws.recv(timeout=5)))
    for frame, mine, theirs in zip(CASES, recorded, live):
        assert mine == theirs, f"{frame}: recording host {mine}, aurora-host {theirs}"
    assert live[9]["code"] == "too_many_rooms" and live[9]["ref"] == "over"  # the cases reach what they mean to


@pytest.mark.parametrize("text, code", REFUSED, ids=[c for _, c in REFUSED])
def test_what_aurora_host_refuses_is_refused(real_host, text, code):
    with aurora.Plugin.load(built("echo"), {"tick_ms": 0}) as p:
        with pytest.raises(ValueError, match=f'error "{code}"'):
            p.message(p.connect(), text)
    with connect(real_host.ws_url + "/", open_timeout=5) as ws:
        ws.send(text)
        reply = json.loads(ws.recv(timeout=5))
    assert (reply["type"], reply["code"]) == ("error", code)


def test_msg_ref_and_room_limit_of_the_recording_host():
    with aurora.Plugin.load(built("echo"), {"tick_ms": 0}) as p:
        c = p.connect()
        assert p.message(c, {"type": "echo", "text": "t", "ref": "q"}).ref == "q"
        assert p.message(c, {"type": "echo", "text": "t"}).ref is None
        assert p.max_rooms_per_conn == 32  # aurora-host's default
        with pytest.raises(ValueError):
            p.max_rooms_per_conn = 0
