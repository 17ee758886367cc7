"""A camera as a ROS 2 node: sensor_msgs/Image (rgb8) + CameraInfo at a set rate, cropped and resized.

    robot-rl-camera-node --ros-args -p camera:=front -p source:=/dev/video0 -p rate_hz:=10.0 \
        -p crop:="[160, 0, 960, 720]" -p width:=128 -p height:=128 -p camera_info_url:=file:///calib/front.yaml
    robot-rl-camera-node --ros-args -p camera:=wrist -p driver:=realsense -p source:=<serial>

Publishes `<camera>/image_raw` and `<camera>/camera_info` (robot_rl.ros.topics, SENSOR_QOS), both
stamped with the capture time (ROS clock) and `frame_id`. A grabber thread reads the device; the main
loop publishes the newest frame once per period if it is new and younger than `max_frame_age_s`,
so a stalled camera publishes nothing (the actor then pauses on stale images) while the grabber
reopens it every `reopen_interval_s`. A video file (driver uvc) plays like a live camera at its own
frame rate; at its end the node logs it and stops publishing, or starts over with `loop:=true`.

Intrinsics: `camera_info_url` (a ROS camera_info YAML for the capture size), else the adapter's own
(RealSense: factory calibration; UVC: a nominal pinhole of `nominal_hfov_deg`). K and P are carried
through the crop and the resize (robot_rl_drivers.camera_geometry). The actor applies the same CropResize to
images it takes straight from other drivers (usb_cam, realsense2_camera: robot_rl.ros.image_convert).
"""

from __future__ import annotations

import inspect
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robot_rl.interfaces import Camera, Frame
from robot_rl.ros import convert, topics
from robot_rl.ros.params import declare_config
from robot_rl_drivers.camera_geometry import CameraCalibration, CropResize
from robot_rl_drivers.camera_grabber import FrameGrabber
from robot_rl_drivers.camera_info_yaml import load_camera_info_yaml

DRIVERS = ("uvc", "realsense")


@dataclass(frozen=True)
class CameraNodeConfig:
    """ROS parameters of the camera node (one parameter per field)."""

    camera: str = "front"  # camera name: topics <camera>/image_raw and <camera>/camera_info
    driver: str = "uvc"  # uvc (cv2: device index, /dev/video path, stream URL or video file) or realsense
    source: str = "0"  # uvc: "0", "/dev/video2", "rtsp://..." or a video file; realsense: serial ("0" = first found)
    rate_hz: float = 10.0  # publish rate; each period publishes the newest frame if it is new
    frame_id: str = ""  # header.frame_id of images and camera info; "" = <camera>_optical_frame
    capture_width: int = 0  # capture mode asked of the device (0 = its default; realsense 640)
    capture_height: int = 0  # capture mode height (0 = its default; realsense 480)
    capture_fps: float = 0.0  # device frame rate (0 = its default); a video file plays at this rate (0 = its own)
    fourcc: str = ""  # uvc pixel format to ask for, e.g. MJPG for high resolutions over USB 2 ("" = default)
    loop: bool = False  # video files: start over at the end instead of ending
    crop: tuple[int, ...] = (
        0,
        0,
        0,
        0,
    )  # crop box x, y, width, height in capture pixels (width/height 0 = to the edge)
    width: int = 0  # published width after cropping and resizing (0 = crop width)
    height: int = 0  # published height after cropping and resizing (0 = crop height)
    camera_info_url: str = (
        ""  # camera_info YAML of the capture size (file:///path or a path); "" = adapter's intrinsics
    )
    nominal_hfov_deg: float = 60.0  # uvc without camera_info_url: horizontal field of view of the nominal pinhole
    reopen_interval_s: float = 1.0  # a camera that failed is reopened at most this often
    max_frame_age_s: float = 0.5  # a frame older than this at publish time is dropped, never published
    frame_timeout_s: float = 1.0  # no new frame for this long: log a warning (once per outage)

    def validate(self) -> None:
        if self.driver not in DRIVERS:
            raise ValueError(f"driver {self.driver!r} is not known; choose one of {list(DRIVERS)}")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$", self.camera):
            raise ValueError(f"camera {self.camera!r} must be a topic name like front or wrist")
        positive = {
            "rate_hz": self.rate_hz,
            "reopen_interval_s": self.reopen_interval_s,
            "max_frame_age_s": self.max_frame_age_s,
            "frame_timeout_s": self.frame_timeout_s,
        }
        if bad := {k: v for k, v in positive.items() if not v > 0}:
            raise ValueError(f"these parameters must be positive: {bad}")
        if len(self.crop) != 4:
            raise ValueError(f"crop must be [x, y, width, height] (4 integers), got {list(self.crop)}")
        if min(self.width, self.height, self.capture_width, self.capture_height, self.capture_fps) < 0:
            raise ValueError("width, height, capture_width, capture_height and capture_fps must be >= 0")

    def crop_resize(self) -> CropResize:
        x, y, w, h = (int(v) for v in self.crop)
        return CropResize(x=x, y=y, crop_width=w, crop_height=h, width=self.width, height=self.height)


def camera_info_msg(calib: CameraCalibration, t_s: float, frame_id: str) -> CameraInfo:
    """CameraInfo of `calib` (the published images' model), stamped `t_s`."""
    return CameraInfo(
        header=Header(stamp=convert.stamp_from_seconds(t_s), frame_id=frame_id),
        height=calib.height,
        width=calib.width,
        distortion_model=calib.distortion_model,
        d=list(calib.D),
        k=list(calib.K),
        r=list(calib.R),
        p=list(calib.P),
    )


class CameraNode(Node):
    """One camera: a grabber thread reads it, the main loop publishes the newest frame at `rate_hz`."""

    def __init__(self, **node_kw):
        super().__init__("camera", **node_kw)
        self.stop = threading.Event()  # set by main's signal handler
        self.cfg = declare_config(self, CameraNodeConfig())
        self.cfg.validate()
        cfg = self.cfg
        self.frame_id = cfg.frame_id or f"{cfg.camera.replace('/', '_')}_optical_frame"
        self.crop = cfg.crop_resize()
        self.file_calibration = load_camera_info_yaml(cfg.camera_info_url) if cfg.camera_info_url else None
        if cfg.driver == "realsense":
            from robot_rl_drivers.camera_realsense import import_pyrealsense2

            import_pyrealsense2()  # fail at start-up with the install command, not in the grabber thread
        self.calibration: CameraCalibration | None = None  # of the published images, set when the camera opens
        self.pub_image = self.create_publisher(Image, topics.image_topic(cfg.camera), topics.SENSOR_QOS)
        self.pub_info = self.create_publisher(CameraInfo, topics.camera_info_topic(cfg.camera), topics.SENSOR_QOS)
        self.published, self.dropped_old = 0, 0
        self._last_seq, self._last_new_t = 0, time.monotonic()
        self._outage_reported = self._end_reported = False
        self.grabber = FrameGrabber(self._open_camera, cfg.reopen_interval_s, self._log, name=cfg.camera).start()
        self.get_logger().info(
            f"camera node up: {cfg.camera} driver={cfg.driver} source={cfg.source!r} rate={cfg.rate_hz:g} Hz "
            f"crop={list(cfg.crop)} size={cfg.width}x{cfg.height} intrinsics="
            f"{cfg.camera_info_url or 'from the camera (uvc: nominal)'}"
        )

    def _log(self, level: str, message: str) -> None:
        logger = self.get_logger()  # rclpy fixes a call site's severity at its first call: one call per level
        if level == "error":
            logger.error(message)
        elif level == "warning":
            logger.warning(message)
        else:
            logger.info(message)

    def _open_camera(self) -> Camera:
        """Called by the grabber (its thread): open the adapter and work out the published images' model."""
        cfg = self.cfg
        if cfg.driver == "uvc":
            from robot_rl_drivers.camera_uvc import UvcCamera

            camera = UvcCamera(
                cfg.source,
                cfg.camera,
                cfg.capture_width,
                cfg.capture_height,
                cfg.capture_fps,
                cfg.fourcc,
                cfg.loop,
                cfg.nominal_hfov_deg,
                self.frame_id,
            )
        else:
            from robot_rl_drivers.camera_realsense import RealSenseCamera

            serial = "" if cfg.source in ("", "0") else cfg.source
            camera = RealSenseCamera(
                serial, cfg.camera, cfg.capture_width, cfg.capture_height, cfg.capture_fps, self.frame_id
            )
        try:
            calib = self.file_calibration or camera.calibration
            if (calib.width, calib.height) != (camera.spec.width, camera.spec.height):
                raise ValueError(
                    f"camera_info_url {cfg.camera_info_url} is for {calib.width}x{calib.height} images but "
                    f"the camera delivers {camera.spec.width}x{camera.spec.height}; calibrate at the capture "
                    f"size or set capture_width/capture_height to {calib.width}x{calib.height}"
                )
            self.calibration = self.crop.calibration(calib)
        except ValueError:
            camera.close()
            raise
        return camera

    # --- main loop ----------------------------------------------------------------------------
    def run(self, executor: SingleThreadedExecutor) -> None:
        """Publish once per period, serve callbacks in between; returns on shutdown or a configuration error."""
        period_s = 1.0 / self.cfg.rate_hz
        deadline = time.monotonic()
        while rclpy.ok(context=self.context) and not self.stop.is_set():
            if self.grabber.fatal:
                raise ValueError(self.grabber.fatal)
            self.tick()
            deadline += period_s
            while (remaining_s := deadline - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining_s)
            if remaining_s < -10 * period_s:  # fell far behind (a loaded machine): re-anchor
                deadline = time.monotonic()

    def tick(self) -> None:
        """Publish the newest frame if it is new and fresh; otherwise publish nothing (and say why, once)."""
        seq, frame = self.grabber.latest()
        now = time.monotonic()
        if seq == self._last_seq or frame is None or self.calibration is None:
            self._report_missing(now)
            return
        self._last_seq, self._last_new_t, self._outage_reported = seq, now, False
        age_s = now - frame.t_capture
        if age_s > self.cfg.max_frame_age_s:
            self.dropped_old += 1
            self.get_logger().warning(
                f"camera {self.cfg.camera}: frame {age_s:.3f} s old, dropped ({self.dropped_old} "
                f"so far; max_frame_age_s={self.cfg.max_frame_age_s:g})",
                throttle_duration_sec=1.0,
            )
            return
        stamp_s = self.get_clock().now().nanoseconds * 1e-9 - age_s  # the capture time on the ROS clock
        image = self.crop.image(frame.image)  # (height, width, 3) RGB
        self.pub_image.publish(convert.image_msg(Frame(image, stamp_s), self.frame_id))
        self.pub_info.publish(camera_info_msg(self.calibration, stamp_s, self.frame_id))
        self.published += 1

    def _report_missing(self, now: float) -> None:
        if self.grabber.ended:
            if not self._end_reported:
                self._end_reported = True
                self.get_logger().info(
                    f"camera {self.cfg.camera}: end of {self.cfg.source}; stopped publishing "
                    f"after {self.published} images"
                )
            return
        if not self._outage_reported and now - self._last_new_t > self.cfg.frame_timeout_s:
            self._outage_reported = True
            self.get_logger().warning(
                f"camera {self.cfg.camera}: no new frame for {now - self._last_new_t:.1f} s; "
                f"publishing nothing until frames return"
            )

    def close(self) -> None:
        self.grabber.stop()


def _parameter_help() -> str:
    """One line per parameter, from CameraNodeConfig's fields and their comments."""
    lines = []
    for line in inspect.getsource(CameraNodeConfig).splitlines():
        if m := re.match(r"^    (\w+): [^=]+= (.+?)  # (.+)$", line):
            default = m[2].replace("(", "[").replace(")", "]")  # tuples are ROS integer arrays
            lines.append(f"  {m[1]:<18} {m[3]} (default {default})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-camera-node`: `robot-rl-camera-node --ros-args -p camera:=front -p source:=0`."""
    args = sys.argv if argv is None else argv
    if any(a in ("-h", "--help") for a in args[1 : args.index("--ros-args") if "--ros-args" in args else None]):
        print(f"usage: robot-rl-camera-node --ros-args -p NAME:=VALUE ...\n{__doc__}\nparameters:\n{_parameter_help()}")
        return 0
    # SIGINT/SIGTERM only set a flag the main loop checks, so the node stops between two periods and exits 0.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = CameraNode()
        node.stop = stop
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.run(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # SIGINT shut the context down mid-publish: a clean exit too
        if node is None or node.context.ok():
            raise
    except (ValueError, ImportError) as err:  # a bad parameter, calibration file or missing pyrealsense2
        print(f"robot-rl-camera-node: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
