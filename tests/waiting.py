"""Polling for a condition with a deadline: the one way the integration tests wait (no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    what: str | Callable[[], str] = "condition",
    interval: float = 0.02,
) -> Any:
    """Return the first truthy value of ``predicate()``; fail the test after ``timeout`` seconds (``what`` may be
    a callable, to describe the state at the time of failure). The timeout is a ceiling for a busy CI machine, not
    a measure: the default is generous, and a test that asserts timing measures it itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
