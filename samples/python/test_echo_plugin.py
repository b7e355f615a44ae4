"""Testing a plugin from Python without sockets: the echo sample, driven
through aurora.Plugin (docs/python.md). Run with

    AURORA_ECHO_PLUGIN=build/plugins/echo.so pytest samples/python/test_echo_plugin.py
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import aurora

ECHO = os.environ.get("AURORA_ECHO_PLUGIN") or str(Path(__file__).resolve().parents[2] / "build/plugins/echo.so")


@pytest.fixture
def echo() -> Iterator[aurora.Plugin]:
    with aurora.Plugin.load(ECHO, {"tick_ms": 0}) as plugin:
        yield plugin


def test_echo_replies_with_the_text_and_ref(echo: aurora.Plugin) -> None:
    conn = echo.connect(user_id="u1", username="alice")
    msg = echo.message(conn, {"type": "echo", "text": "hi", "ref": 7})
    assert msg.verdict == "reply"
    assert msg.reply == {"type": "echo", "text": "hi", "ref": 7}


def test_join_puts_the_connection_in_the_room(echo: aurora.Plugin) -> None:
    conn = echo.connect(user_id="u1")
    assert echo.message(conn, {"type": "join", "room": "lobby"}).reply == {"type": "joined", "room": "lobby"}
    assert echo.rooms(conn) == {"lobby"}


def test_drop_and_pass_through(echo: aurora.Plugin) -> None:
    conn = echo.connect(user_id="u1")
    assert echo.message(conn, {"type": "drop"}).verdict == "drop"
    assert echo.message(conn, {"text": "for the next plugin"}).verdict == "continue"


def test_ticks_come_from_the_worker_thread() -> None:
    with aurora.Plugin.load(ECHO, {"tick_ms": 10, "tick_room": "t"}) as plugin:
        assert plugin.wait_for("broadcast", count=3, timeout=5.0)
        ticks = plugin.broadcasts("t")
        assert [t["n"] for t in ticks[:3]] == [1, 2, 3]
        assert all(e["thread"] != 0 for e in plugin.events("broadcast"))  # not the service thread


def test_bad_settings_fail_init() -> None:
    with pytest.raises(aurora.PluginInitError, match="tick_ms"):
        aurora.Plugin.load(ECHO, {"tick_ms": -1})


def test_raw_mode_sends_every_message_back_verbatim() -> None:
    with aurora.Plugin.load(ECHO, {"mode": "raw"}) as plugin:
        c = plugin.connect("alice")
        assert plugin.message(c, "not json").verdict == "drop"
        assert plugin.message(c, b"\x00\xff binary", binary=True).verdict == "drop"
        assert plugin.message(c, {"type": "echo", "text": "hi"}).verdict == "drop"
        sent = [(e["kind"], e["payload"]) for e in plugin.events() if e["kind"] in ("send", "send_binary")]
        assert sent == [("send", "not json"), ("send_binary", b"\x00\xff binary"),
                        ("send", '{"type":"echo","text":"hi"}')]


def test_bad_mode_fails_init() -> None:
    with pytest.raises(aurora.PluginInitError, match='"mode" must be "json" or "raw"'):
        aurora.Plugin.load(ECHO, {"mode": "rawr"})
