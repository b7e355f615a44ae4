"""Waiting for a condition another process makes true: polled, with a
deadline, never a bare sleep.

    got = wait_until(lambda: receiver.events(), "the webhook's events")
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(pred: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.02) -> T:
    """The first truthy value of pred(); AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(interval)  # polling, bounded by the deadline
