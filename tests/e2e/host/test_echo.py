"""The message pipeline seen from a client: REPLY, DROP, CONTINUE to the end."""

from __future__ import annotations

import contextlib
import json

from ws_client import connect, echo_round_trip, recv_json, send_json


def test_echo_reply(echo_host):
    with connect(echo_host) as ws:
        send_json(ws, {"type": "echo", "text": "hi"})
        reply = recv_json(ws)
        assert reply["type"] == "echo"
        assert reply["text"] == "hi"


def test_echo_on_ws_path(echo_host):
    with connect(echo_host, "/ws") as ws:
        echo_round_trip(ws)


def test_echo_keeps_unicode(echo_host):
    text = "héllo wörld — 日本語 🎉"
    with connect(echo_host) as ws:
        send_json(ws, {"type": "echo", "text": text})
        assert recv_json(ws)["text"] == text


def test_drop_sends_nothing(echo_host):
    with connect(echo_host) as ws:
        send_json(ws, {"type": "drop"})
        # The next frame must be the echo that follows, not anything for the drop.
        echo_round_trip(ws)


def test_unknown_type_is_unhandled(echo_host):
    with connect(echo_host) as ws:
        send_json(ws, {"type": "no_such_type", "x": 1})
        reply = recv_json(ws)
        assert reply["type"] == "error", reply
        assert reply["code"] == "unhandled", reply
        assert isinstance(reply.get("message"), str) and reply["message"], reply
        echo_round_trip(ws)


def test_join_reply(echo_host):
    with connect(echo_host) as ws:
        send_json(ws, {"type": "join", "room": "lobby"})
        reply = recv_json(ws)
        assert reply.get("type") == "joined" and reply.get("room") == "lobby", reply


def test_pipelined_frames_answered_in_order(echo_host):
    """100 requests written before reading any reply come back in order."""
    with connect(echo_host) as ws:
        for i in range(100):
            send_json(ws, {"type": "echo", "text": f"n{i}"})
        got = [recv_json(ws)["text"] for _ in range(100)]
        assert got == [f"n{i}" for i in range(100)]


def test_many_clients_are_independent(echo_host):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(echo_host)) for _ in range(20)]
        for i, ws in enumerate(clients):
            send_json(ws, {"type": "echo", "text": f"client-{i}"})
        for i, ws in enumerate(clients):
            assert recv_json(ws)["text"] == f"client-{i}"


def test_log_lines_are_json(echo_host):
    """log.format json: every line on stderr is one JSON object."""
    with connect(echo_host) as ws:
        echo_round_trip(ws)
    lines = [ln for ln in echo_host.stderr_lines() if ln.strip()]
    assert lines, "the host wrote no log line at all (expected at least its start-up line at info)"
    bad = []
    for ln in lines:
        try:
            if not isinstance(json.loads(ln), dict):
                bad.append(ln)
        except ValueError:
            bad.append(ln)
    assert not bad, "stderr lines that are not JSON objects:\n" + "\n".join(bad[:10])
