"""Spin an executor until a condition holds: what the probes (`bench ros`, `check`) wait with."""

from __future__ import annotations

import time
from collections.abc import Callable


def spin_until(executor, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
    """Handle callbacks until `predicate()` holds or `timeout_s` passes; returns the predicate's last value."""
    end = time.monotonic() + timeout_s
    while not predicate() and (left := end - time.monotonic()) > 0:
        executor.spin_once(timeout_sec=min(left, poll_s))
    return predicate()
