"""The API a python_policy module sees: the message view and the verdicts.

Inside aurora-host, python_policy provides its own native ``aurora_policy``
module (it shadows this one); this pure-Python twin has the same names and
behaviour so that a policy can be unit-tested and type-checked without a host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["IN_HOST", "Message", "Verdict", "allow", "drop", "replace", "reply"]

IN_HOST = False  # True in the native module that python_policy provides


@dataclass(frozen=True)
class Message:
    """A read-only view of one inbound frame."""
    user: str
    user_id: str = ""
    type: str = "message"
    room: str | None = None
    text: str | None = None
    payload: str = "{}"
    conn: int = 0


@dataclass(frozen=True)
class Verdict:
    kind: str  # "allow", "drop", "replace" or "reply"
    text: str = ""


def allow() -> Verdict:
    """Pass the message on (the same as returning None)."""
    return Verdict("allow")


def drop(reason: str = "") -> Verdict:
    """Stop the message; with a reason the sender gets {"type":"error","code":"policy","message":reason}."""
    return Verdict("drop", reason)


def replace(text: str) -> Verdict:
    """Pass the message on with its "text" replaced."""
    return Verdict("replace", text)


def reply(frame: dict[str, Any] | str) -> Verdict:
    """Stop the message and send `frame` (a JSON object) to the sender."""
    return Verdict("reply", frame if isinstance(frame, str) else json.dumps(frame))
