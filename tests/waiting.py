"""Waiting on a condition instead of sleeping a guessed time.

A test that must wait for something another process does (a job reaching the server, a file
appearing) names the condition and waits for it, up to a generous limit that only a broken app
reaches; the test then asserts on what happened, never on how long it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

POLL_S = 0.05  # how often the condition is asked; it decides nothing in the test


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 600.0) -> None:
    """Return as soon as `condition()` is true; fail the test naming `what` after `timeout_s` seconds."""
    import pytest

    deadline = time.monotonic() + timeout_s
    tick = threading.Event()  # never set: its wait() is an interruptible pause between polls
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout_s:.0f} s waiting for {what}")
        tick.wait(POLL_S)
