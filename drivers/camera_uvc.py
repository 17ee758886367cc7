"""A UVC camera, a network stream or a video file behind the Camera interface, through cv2.VideoCapture.

    UvcCamera("0")                      # first video device
    UvcCamera("/dev/video2", width=1280, height=720, fps=30, fourcc="MJPG")
    UvcCamera("clip.avi", loop=True)    # a file plays like a live camera, at its own frame rate

A device has no intrinsics of its own: `calibration` is a nominal pinhole from `hfov_deg` until a
calibration file replaces it (the node's `camera_info_url`).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from robot_rl.interfaces import Camera, CameraSpec, Frame
from robot_rl_drivers.camera_errors import CameraError, EndOfStream
from robot_rl_drivers.camera_geometry import CameraCalibration, nominal_calibration

DEFAULT_FPS = 30.0  # a file or device that reports no frame rate is read at this rate


def source_kind(source: str) -> str:
    """'device' (an index like "0", a /dev/video path or a stream URL) or 'file' (a video file path)."""
    if source.isdigit() or source.startswith("/dev/") or "://" in source:
        return "device"
    return "file"


class UvcCamera(Camera):
    """Frames from cv2.VideoCapture as RGB, stamped with the monotonic time `read` got them.

    A video file is paced like a device: `read` sleeps until the file's next frame is due (1 / fps after
    the last), so a node reading it sees a live camera. At the end of the file it starts over (`loop`) or
    raises `EndOfStream`; a device that delivers nothing raises `CameraError` (the caller reopens).
    """

    def __init__(
        self,
        source: str,
        name: str = "camera",
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        fourcc: str = "",
        loop: bool = False,
        hfov_deg: float = 60.0,
        frame_id: str = "",
    ):
        self.source, self.kind, self.loop = str(source), source_kind(str(source)), loop
        if self.kind == "file" and not Path(self.source).is_file():
            raise CameraError(
                f"video file {self.source} does not exist (source is a device index, a /dev/video path, "
                f"a stream URL or a video file)"
            )
        self._cap = cv2.VideoCapture(int(self.source) if self.source.isdigit() else self.source)
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraError(
                f"cannot open {self.kind} {self.source} (unplugged, in use by another process, or "
                f"not a video cv2 can decode?)"
            )
        if self.kind == "device":
            if fourcc:
                self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc.ljust(4)[:4]))
            if width and height:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued seconds ago
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w <= 0 or h <= 0:
            self._cap.release()
            raise CameraError(f"{self.kind} {self.source} reports no frame size")
        self.fps = float(fps or self._cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS)
        self.calibration: CameraCalibration = nominal_calibration(w, h, hfov_deg)
        self.spec = CameraSpec(
            name=name,
            width=w,
            height=h,
            rate_hz=self.fps,
            K=self.calibration.K,
            frame_id=frame_id or f"{name}_optical_frame",
        )
        self._due = time.monotonic()  # files: when the next frame may be handed out

    def read(self) -> Frame:
        """The next frame: (H, W, 3) uint8 RGB, a fresh array. Blocks until the device (or the file's pace) gives one."""
        if self._cap is None:
            raise CameraError(f"{self.kind} {self.source} is closed")
        if self.kind == "file":
            now = time.monotonic()
            if self._due > now:
                time.sleep(self._due - now)
            self._due = max(self._due + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)  # re-anchor when behind
        ok, bgr = self._cap.read()
        if not ok and self.kind == "file":
            if not self.loop:
                raise EndOfStream(f"video file {self.source} ended")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        t_capture = time.monotonic()
        if ok and self.kind == "device":  # V4L2 stamps each buffer on CLOCK_MONOTONIC (time.monotonic's clock)
            t_buffer_s = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if 0.0 < t_capture - t_buffer_s < 1.0:  # anything else is another clock: keep the time of the read
                t_capture = t_buffer_s
        if not ok or bgr is None:
            raise CameraError(f"{self.kind} {self.source} delivered no frame (unplugged or stalled?)")
        if bgr.shape[:2] != (self.spec.height, self.spec.width) or bgr.ndim != 3:
            raise CameraError(
                f"{self.kind} {self.source} delivered a {bgr.shape} frame; expected "
                f"{self.spec.height}x{self.spec.width}x3 (did the device change mode?)"
            )
        return Frame(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t_capture=t_capture)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
