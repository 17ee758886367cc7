"""`VizThread`: a `RerunLog` behind a bounded queue and one worker thread, so a control loop never waits for it.

The loop calls `submit("step", step=..., images=..., ...)` (any `RerunLog` method by name): the call copies the
arrays it is given and puts them on the queue without blocking; when the queue is full the item is dropped and
counted (`dropped`), never waited for. The worker does the slow part (JPEG encoding, Rerun's serialisation and
I/O). An exception in the worker is counted (`errors`, the first kept as `first_error`) and logging goes on:
a viewer going away must not end a robot's actor.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

_STOP = object()


def _owned(value: Any) -> Any:
    """A copy of arrays (and of dicts of arrays), so the caller may reuse its buffers after submit returns."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _owned(v) for k, v in value.items()}
    return value


class VizThread:
    """Runs `RerunLog` calls on a worker thread (see the module docstring)."""

    def __init__(self, log: Any, max_queue: int = 256, on_error: Callable[[str], None] | None = None):
        self.log = log
        self.dropped = 0  # items refused because the queue was full
        self.errors = 0  # items whose logging raised
        self.first_error: str | None = None
        self._on_error = on_error
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="viz-rerun", daemon=True)
        self._thread.start()

    def submit(self, method: str, **kwargs: Any) -> bool:
        """Queue `log.<method>(**kwargs)`; False (and counted) when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait((method, {k: _owned(v) for k, v in kwargs.items()}))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            method, kwargs = item
            try:
                getattr(self.log, method)(**kwargs)
            except Exception as err:  # noqa: BLE001 (any failure of the view is counted, never raised into the loop)
                self.errors += 1
                if self.first_error is None:
                    self.first_error = f"{type(err).__name__}: {err}"
                    if self._on_error is not None:
                        self._on_error(f"Rerun view: {self.first_error} (logging goes on; later errors are counted)")

    def close(self, timeout_s: float = 10.0) -> None:
        """Log what is queued (up to `timeout_s`), then close the recording."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:  # a worker stuck in I/O: leave it (a daemon thread) rather than hang the exit
                return
            self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.log.close()
