"""Read a camera on its own thread, keep only the newest frame, and reopen a failing camera at a bounded rate.

A blocking device read never stalls the node's publishing loop, and a camera that stops delivering
leaves `latest()` unchanged (same sequence number), so nothing stale is ever handed out as new.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from robot_rl.interfaces import Camera, Frame
from robot_rl_drivers.camera_errors import CameraError, EndOfStream

Log = Callable[[str, str], None]  # (level: "info" | "warning" | "error", message)


class FrameGrabber:
    """Owns the camera: opens it with `open_camera()`, reads it in a loop, reopens it after a fault.

    `open_camera` raises `CameraError` when the device is (still) not there: the grabber tries again after
    `reopen_interval_s`, never sooner. Any other exception while opening is a configuration error: the
    grabber stops and leaves the message in `fatal`. `EndOfStream` stops it and sets `ended`.
    """

    def __init__(self, open_camera: Callable[[], Camera], reopen_interval_s: float, log: Log, name: str = "camera"):
        if reopen_interval_s <= 0:
            raise ValueError(f"reopen_interval_s must be positive seconds, got {reopen_interval_s}")
        self._open_camera, self.reopen_interval_s, self._log, self.name = open_camera, reopen_interval_s, log, name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._seq = 0  # frames read since start; a new frame has a new number
        self.open_attempts = 0  # how many times open_camera was called
        self.faults = 0  # read failures that made the grabber reopen the camera
        self.ended = False  # a non-looping file played to its end
        self.fatal = ""  # a configuration error that stopped the grabber
        self._thread = threading.Thread(target=self._run, name=f"grab_{name}", daemon=True)

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def latest(self) -> tuple[int, Frame | None]:
        """(sequence number, newest frame); the number grows by one per frame read."""
        with self._lock:
            return self._seq, self._latest

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish and wait up to `timeout_s` (a read blocked in a driver may take longer; the
        thread is a daemon, so it never keeps the process alive)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _open(self) -> Camera | None:
        self.open_attempts += 1
        try:
            camera = self._open_camera()
        except CameraError as err:
            self._log(
                "warning",
                f"camera {self.name}: {err} (attempt {self.open_attempts}); retrying in {self.reopen_interval_s:g} s",
            )
            return None
        self._log(
            "info",
            f"camera {self.name}: opened {camera.spec.width}x{camera.spec.height} "
            f"@ {camera.spec.rate_hz:g} fps (attempt {self.open_attempts})",
        )
        return camera

    def _run(self) -> None:
        camera: Camera | None = None
        next_open = time.monotonic()
        try:
            while not self._stop.is_set():
                if camera is None:
                    if (wait_s := next_open - time.monotonic()) > 0:
                        self._stop.wait(wait_s)
                        continue
                    next_open = time.monotonic() + self.reopen_interval_s
                    camera = self._open()
                    continue
                try:
                    frame = camera.read()
                except EndOfStream as end:
                    self.ended = True
                    self._log("info", f"camera {self.name}: {end}; no more frames (set loop:=true to play it again)")
                    return
                except Exception as err:  # a device fault (CameraError, cv2.error, a driver's RuntimeError): reopen
                    self.faults += 1
                    self._log(
                        "warning",
                        f"camera {self.name}: {err}; closing it and reopening "
                        f"(at most every {self.reopen_interval_s:g} s)",
                    )
                    camera.close()
                    camera = None
                    continue
                with self._lock:
                    self._latest, self._seq = frame, self._seq + 1
        except Exception as err:  # noqa: BLE001 - a bad configuration found at open: report it to the node
            self.fatal = f"camera {self.name}: {err}"
            self._log("error", self.fatal)
        finally:
            if camera is not None:
                camera.close()
