"""The sim robot node's cameras drawn on a thread of their own, off the physics period.

Drawing two 128x128 cameras on software EGL takes 6-12 ms of CPU (up to ~40 ms on a loaded machine). Done inline after
each period, a draw still running when the next period is due holds that period's /clock and state back (its thread is
raised for the period and finishes the draw first). Here the period thread only copies the state into the cameras'
scenes (`CameraRig.capture`, no GL, well under a millisecond) and hands them over; this thread draws, reads the pixels
back and publishes them at ordinary priority, so the period preempts it. MuJoCo releases the GIL while it draws.

One frame in flight: a frame that falls due while the previous one is still being drawn is skipped and counted
(`dropped`), as a camera whose consumer cannot keep up drops frames; its images are never older than their stamp says.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import mujoco
import numpy as np

from robot_rl_sim.camera import CameraRig

Publish = Callable[[dict[str, np.ndarray], float], None]  # (name -> image, sim time of the state drawn)


class CameraThread:
    """Draws a rig's cameras on a thread that owns the rig's GL context; `capture` on the thread that steps physics."""

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        names: Sequence[str],
        size: int,
        publish: Publish,
        on_error: Callable[[str], None],
    ):
        self._publish, self._on_error = publish, on_error
        self._cv = threading.Condition()
        self._pending: float | None = None  # sim time of a captured frame not yet drawn
        self._busy = False  # a capture is pending or being drawn: the scenes are the drawing thread's
        self._stop = False
        self.drawn = self.dropped = self.failed = 0
        self.rig: CameraRig | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(model, data, tuple(names), int(size)), name="sim-cameras", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def capture(self, t: float) -> bool:
        """Copy the current state into the scenes and hand them to the drawing thread; False (counted in `dropped`)
        when the previous frame is still being drawn."""
        with self._cv:
            if self._busy or self._stop:
                self.dropped += int(not self._stop)
                return False
            self._busy = True
        self.rig.capture()  # the scenes are ours until _pending is set: the drawing thread is waiting
        with self._cv:
            self._pending = t
            self._cv.notify()
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout_s)

    def _run(self, model: mujoco.MjModel, data: mujoco.MjData, names: tuple[str, ...], size: int) -> None:
        try:
            self.rig = CameraRig(model, data, names, size, size)  # its GL context is current on this thread only
        except BaseException as err:  # noqa: BLE001 - handed to the constructor, which raises it
            self._start_error = err
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                with self._cv:
                    while self._pending is None and not self._stop:
                        self._cv.wait()
                    if self._stop:
                        return
                    t, self._pending = self._pending, None
                self._draw(t)
        finally:
            self.rig.close()

    def _draw(self, t: float) -> None:
        try:
            images = self.rig.draw()
            self._publish(images, t)
            self.drawn += 1
        except Exception as err:  # noqa: BLE001 - a failed frame is logged and counted; the next one is tried
            self.failed += 1
            self._on_error(f"camera frame at sim time {t:.3f} s failed: {err}")
        finally:
            with self._cv:
                self._busy = False
