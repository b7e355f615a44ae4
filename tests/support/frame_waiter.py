"""What the WebSocket test clients share: every frame read is kept, so a test
can wait for one condition while others arrive in any order."""

from __future__ import annotations

import json
import time


class FrameWaiter:
    """Mixed into a client that has `self.ws` (websockets' sync client) and
    `self.frames` (a list)."""

    ws: object
    frames: list

    def wait(self, pred, what: str, timeout: float) -> dict:
        """The first frame, kept or new, that `pred` accepts (removed from the
        kept ones); AssertionError naming `what` after `timeout` seconds."""
        for f in self.frames:
            if pred(f):
                self.frames.remove(f)
                return f
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            if pred(f):
                return f
            self.frames.append(f)
        raise AssertionError(f"no {what} within {timeout} s; got {self.frames[-5:]}")
