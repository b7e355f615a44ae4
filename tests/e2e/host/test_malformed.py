"""Malformed frames get an error reply and the connection stays up
(docs/protocol.md, "Frames"); a frame over the hard limit closes it with 1009.

The module's host runs with limits.max_frame_bytes 4096 and
limits.hard_max_frame_bytes 65536 (conftest.ECHO_LIMITS).
"""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from e2e_host_support import ECHO_LIMITS
from ws_client import connect, echo_round_trip, recv_json, send_json

MAX = ECHO_LIMITS["max_frame_bytes"]
HARD = ECHO_LIMITS["hard_max_frame_bytes"]


def echo_frame_of_size(size: int) -> str:
    """A valid echo request of exactly `size` bytes."""
    head, tail = '{"type":"echo","text":"', '"}'
    return head + "a" * (size - len(head) - len(tail)) + tail


# (id, what to send, how: "text" | "text-bytes" | "binary", expected error code)
CASES = [
    ("not_json", "this is not json", "text", "bad_json"),
    ("truncated_json", '{"type":"echo","text":"x"', "text", "bad_json"),
    ("trailing_garbage", '{"type":"echo"} xyz', "text", "bad_json"),
    ("empty_frame", "", "text", "bad_json"),
    ("array", '[1,2,3]', "text", "not_object"),
    ("number", "42", "text", "not_object"),
    ("string", '"hello"', "text", "not_object"),
    ("null", "null", "text", "not_object"),
    # One name twice: cJSON reads the first, Python's json the last.
    ("duplicate_text", '{"type":"echo","text":"a","text":"b"}', "text", "bad_json"),
    ("duplicate_type", '{"type":"echo","type":"join","text":"a"}', "text", "bad_json"),
    ("type_number", '{"type":5}', "text", "bad_field"),
    ("type_null", '{"type":null}', "text", "bad_field"),
    ("ref_object", '{"type":"echo","text":"x","ref":{}}', "text", "bad_field"),
    ("ref_array", '{"type":"echo","text":"x","ref":[1]}', "text", "bad_field"),
    ("empty_object", "{}", "text", "missing_type"),
    ("no_type_no_text", '{"room":"general"}', "text", "missing_type"),
    # UTF-8 that decodes, to an escape cJSON cannot turn into a character.
    ("lone_high_surrogate_escape", '{"type":"echo","text":"\\ud800"}', "text", "bad_utf8"),
    ("lone_low_surrogate_escape", '{"type":"echo","text":"x\\uDC00"}', "text", "bad_utf8"),
    ("just_over_max", echo_frame_of_size(MAX + 1), "text", "too_large"),
    ("well_over_max", echo_frame_of_size(60000), "text", "too_large"),
    ("exactly_hard_max", echo_frame_of_size(HARD), "text", "too_large"),
    ("binary", b'{"type":"echo","text":"hi"}', "binary", "binary_not_supported"),
]


@pytest.mark.parametrize("payload,how,code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_frame_gets_error_and_connection_stays(echo_host, payload, how, code):
    with connect(echo_host) as ws:
        echo_round_trip(ws)  # the connection works before
        if how == "text":
            ws.send(payload)
        elif how == "text-bytes":
            ws.send(payload, text=True)  # raw bytes in a TEXT frame, not validated by the client
        else:
            ws.send(payload, text=False)
        reply = recv_json(ws)
        assert reply.get("type") == "error", f"sent {payload[:80]!r} ({how}); got {reply}"
        assert reply.get("code") == code, f"sent {payload[:80]!r} ({how}); expected code {code}, got {reply}"
        assert isinstance(reply.get("message"), str) and reply["message"], f"error without a message: {reply}"
        echo_round_trip(ws)  # ... and after
        echo_round_trip(ws)


# RFC 6455 §8.1: a text message that is not valid UTF-8 fails the connection with 1007.
UTF8_INVALID = [
    ("invalid_byte", b'{"type":"echo","text":"\xff\xfe"}'),
    ("overlong", b'{"type":"echo","text":"\xc0\xaf"}'),
    ("surrogate", b'{"type":"echo","text":"\xed\xa0\x80"}'),
    ("truncated", b'{"type":"echo","text":"\xe6\x97"}'),
    ("above_max_code_point", b'{"type":"echo","text":"\xf4\x90\x80\x80"}'),
]


@pytest.mark.parametrize("payload", [c[1] for c in UTF8_INVALID], ids=[c[0] for c in UTF8_INVALID])
def test_invalid_utf8_text_closes_with_1007(echo_host, payload):
    with connect(echo_host) as ws:
        echo_round_trip(ws)
        ws.send(payload, text=True)  # raw bytes in a TEXT frame, not validated by the client
        with pytest.raises(ConnectionClosed) as closed:
            extra = recv_json(ws, timeout=10, expect_close=True)
            pytest.fail(f"expected a close with 1007, got a frame first: {extra}")
        rcvd = closed.value.rcvd
        assert rcvd is not None, f"the connection ended without a close frame (expected 1007): {closed.value!r}"
        assert rcvd.code == 1007, f"expected close code 1007, got {rcvd.code} {rcvd.reason!r}"


def test_invalid_utf8_split_across_fragments_closes_with_1007(echo_host):
    """A code point cut in two by fragmentation is valid; a bad byte in the
    second fragment is not."""
    with connect(echo_host) as ws:
        ws.send([b'{"type":"echo","text":"\xe6', b'\x97\xa5"}'], text=True)
        assert recv_json(ws).get("text") == "\u65e5"
    with connect(echo_host) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            # The host fails the connection at the bad byte: the send itself may see the close.
            ws.send([b'{"type":"echo","text":"\xe6', b'\x97\xff"}'], text=True)
            extra = recv_json(ws, timeout=10, expect_close=True)
            pytest.fail(f"expected a close with 1007, got a frame first: {extra}")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007, repr(closed.value)


def test_frame_of_exactly_max_is_accepted(echo_host):
    frame = echo_frame_of_size(MAX)
    assert len(frame.encode()) == MAX
    with connect(echo_host) as ws:
        ws.send(frame)
        reply = recv_json(ws)
        assert reply.get("type") == "echo" and len(reply.get("text", "")) == MAX - 25, reply


def test_plain_text_frame_is_a_message(echo_host):
    """The seed's {"text": ...} is type "message": no plugin here handles it,
    so it is answered `unhandled`, not `missing_type`."""
    with connect(echo_host) as ws:
        send_json(ws, {"text": "hello"})
        reply = recv_json(ws)
        assert reply.get("type") == "error" and reply.get("code") == "unhandled", reply
        echo_round_trip(ws)


def test_fragmented_message_is_reassembled(echo_host):
    with connect(echo_host) as ws:
        ws.send(['{"type":"ec', 'ho","text":"fr', 'agmented"}'])
        reply = recv_json(ws)
        assert reply.get("type") == "echo" and reply.get("text") == "fragmented", reply


@pytest.mark.parametrize("request_,code,ref", [
    ('{"type":5,"ref":"r1"}', "bad_field", "r1"),
    ('{"type":"no_such_type","ref":"r1"}', "unhandled", "r1"),
    ('{"ref":"r1"}', "missing_type", "r1"),
    ('{"type":"no_such_type","ref":7}', "unhandled", 7),
], ids=["bad_field", "unhandled", "missing_type", "numeric_ref"])
def test_error_echoes_ref(echo_host, request_, code, ref):
    with connect(echo_host) as ws:
        ws.send(request_)
        reply = recv_json(ws)
        assert reply.get("type") == "error" and reply.get("code") == code, f"sent {request_}; got {reply}"
        assert reply.get("ref") == ref, f"sent {request_}; expected ref {ref!r} in the error, got {reply}"
        echo_round_trip(ws)


def test_frame_over_hard_max_closes_with_1009(echo_host):
    with connect(echo_host) as ws:
        echo_round_trip(ws)
        ws.send(echo_frame_of_size(HARD + 1))
        with pytest.raises(ConnectionClosed) as closed:
            # Anything the server sends before the close is a failure too.
            extra = recv_json(ws, timeout=10, expect_close=True)
            pytest.fail(f"expected a close with 1009, got a frame first: {extra}")
        rcvd = closed.value.rcvd
        assert rcvd is not None, \
            f"the connection ended without a close frame (expected 1009): {closed.value!r}"
        assert rcvd.code == 1009, f"expected close code 1009, got {rcvd.code} {rcvd.reason!r}"
    # The host itself is fine.
    with connect(echo_host) as ws:
        echo_round_trip(ws)


def test_many_errors_in_a_row_keep_the_connection(echo_host):
    # 150 at once: within the default frame budget (limits.frames_burst 200).
    with connect(echo_host) as ws:
        for i in range(150):
            ws.send("not json" if i % 2 else "[]")
        codes = [recv_json(ws)["code"] for _ in range(150)]
        assert codes == ["not_object" if i % 2 == 0 else "bad_json" for i in range(150)]
        echo_round_trip(ws)
