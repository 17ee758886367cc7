"""An Intel RealSense colour stream behind the Camera interface, with the device's factory intrinsics.

pyrealsense2 is not a dependency of robot_rl: it is imported when a RealSense camera is opened, and
its absence is reported with the command that installs it.
"""

from __future__ import annotations

import time

import numpy as np

from robot_rl.interfaces import Camera, CameraSpec, Frame
from robot_rl_drivers.camera_errors import CameraError
from robot_rl_drivers.camera_geometry import CameraCalibration


def import_pyrealsense2():
    try:
        import pyrealsense2 as rs
    except ImportError as err:
        raise ImportError(
            f"the RealSense camera needs pyrealsense2, which is not installed ({err}); "
            f"run `pip install pyrealsense2` in this environment, or use driver:=uvc"
        ) from None
    return rs


def _distortion_model(rs, model) -> str:
    """librealsense's model -> CameraInfo's name (as realsense2_camera maps it)."""
    return "equidistant" if model == rs.distortion.kannala_brandt4 else "plumb_bob"


class RealSenseCamera(Camera):
    """The colour stream of one RealSense (by serial number, or the first found) as RGB frames."""

    def __init__(
        self,
        serial: str = "",
        name: str = "camera",
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        frame_id: str = "",
        timeout_s: float = 1.0,
    ):
        rs = import_pyrealsense2()
        self._rs, self._timeout_ms = rs, int(timeout_s * 1000)
        config = rs.config()
        if serial:
            config.enable_device(serial)
        config.enable_stream(rs.stream.color, int(width or 640), int(height or 480), rs.format.rgb8, int(fps or 30))
        self._pipeline = rs.pipeline()
        try:
            profile = self._pipeline.start(config)
        except RuntimeError as err:
            raise CameraError(
                f"cannot start RealSense {serial or '(first found)'} colour {width}x{height}@{fps}: {err}"
            ) from None
        intr = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        self.calibration = CameraCalibration(
            width=intr.width,
            height=intr.height,
            K=(intr.fx, 0.0, intr.ppx, 0.0, intr.fy, intr.ppy, 0.0, 0.0, 1.0),
            D=tuple(intr.coeffs),
            distortion_model=_distortion_model(rs, intr.model),
            camera_name=name,
        )
        self.spec = CameraSpec(
            name=name,
            width=intr.width,
            height=intr.height,
            rate_hz=float(fps or 30),
            K=self.calibration.K,
            frame_id=frame_id or f"{name}_optical_frame",
        )
        self._last_number = -1

    def read(self) -> Frame:
        """The next colour frame (blocks up to timeout_s); a repeated frame number is an error, never a new frame."""
        if self._pipeline is None:
            raise CameraError("RealSense camera is closed")
        try:
            frames = self._pipeline.wait_for_frames(self._timeout_ms)
        except RuntimeError as err:
            raise CameraError(f"RealSense delivered no frame within {self._timeout_ms} ms: {err}") from None
        color = frames.get_color_frame()
        t_capture = time.monotonic()
        if not color or color.get_frame_number() == self._last_number:
            raise CameraError("RealSense frame set has no new colour frame")
        self._last_number = color.get_frame_number()
        domain = color.get_frame_timestamp_domain()
        if domain in (self._rs.timestamp_domain.global_time, self._rs.timestamp_domain.system_time):
            age_s = time.time() - color.get_timestamp() / 1000.0  # since exposure, on the host clock
            if 0.0 <= age_s < 1.0:  # anything else means the clocks disagree: keep the arrival time
                t_capture -= age_s
        image = np.asanyarray(color.get_data()).copy()  # (H, W, 3) RGB; copied out of librealsense's buffer
        return Frame(image=image, t_capture=t_capture)

    def close(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None
