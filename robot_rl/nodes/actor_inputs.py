"""The actor's robot inputs: which topics it reads and how each message becomes numbers for the assembler.

Each converter maps a message to (value, stamp_s): the value as `robot_rl.acting.observation` documents it,
the stamp the header's capture time in seconds, or None for unstamped messages (the node then uses its
ROS-clock receipt time). Converters raise `convert.MessageError` (a ValueError) on malformed messages.
Input names are the relative topic names, so `-r __ns:=/robot_1` and remaps apply as for any node.
Cameras (`CameraInputs`) take images as drivers publish them (realsense2_camera, usb_cam: any colour encoding and
size), crop and resize them to the observation, and carry an optional `<cam>/camera_info` through the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float32MultiArray

from robot_rl.acting import observation as obs
from robot_rl.cell import DEFAULT_JOINT_NAMES, ActorLayout
from robot_rl.ros import convert, image_convert, task_convert, topics
from robot_rl_drivers.camera_geometry import CameraCalibration

Converter = Callable[[Any], tuple[Any, float | None]]


def _stamp(msg: Any) -> float:
    return convert.seconds_from_stamp(msg.header.stamp)


def joints(msg: JointState, names: tuple[str, ...] = DEFAULT_JOINT_NAMES) -> tuple[np.ndarray, float]:
    """-> q_rad (len(names),) of the arm joints `names`, in that order (other joints in the message are ignored)."""
    index = {n: i for i, n in enumerate(msg.name)}
    if any(n not in index for n in names) or len(msg.position) != len(msg.name):
        raise convert.MessageError(
            f"joint_states needs positions of {list(names)}, got names {list(msg.name)} "
            f"and {len(msg.position)} positions (the actor's joint_names parameter picks them)"
        )
    return np.array([msg.position[index[n]] for n in names]), _stamp(msg)


def pose(msg: PoseStamped) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """-> (tool position m (3,), orientation wxyz (4,)), base frame."""
    p, o = msg.pose.position, msg.pose.orientation
    return (np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z])), _stamp(msg)


def twist(msg: TwistStamped) -> tuple[np.ndarray, float]:
    """-> measured tool linear velocity m/s (3,), base frame."""
    v = msg.twist.linear
    return np.array([v.x, v.y, v.z]), _stamp(msg)


def gripper(msg: JointState) -> tuple[float, float]:
    """-> finger gap in m: the sum of the two finger joints (franka_gripper style, each at half the gap)."""
    if len(msg.position) != 2 or not np.all(np.isfinite(msg.position)):
        raise convert.MessageError(f"gripper_state needs 2 finite finger positions, got {list(msg.position)}")
    return float(sum(msg.position)), _stamp(msg)


def success(msg: Bool) -> tuple[bool, None]:
    return bool(msg.data), None


class CameraInputs:
    """The actor's cameras as drivers publish them: any colour encoding and size -> the observation's image
    (crop, then resize: `image_convert.ImageFit`, the camera node's own CropResize), and each camera's
    `<cam>/camera_info` (optional) carried through the same crop and resize, for `actor_status` to report."""

    def __init__(self, layout: ActorLayout, boxes: dict[str, tuple[int, int, int, int] | None] | None = None):
        boxes = boxes or {}
        self.fits = {
            cam: image_convert.ImageFit(layout.image_size, layout.image_size, boxes.get(cam))
            for cam in layout.image_cameras
        }
        self.calibrations: dict[str, CameraCalibration] = {}  # camera -> intrinsics of the observation's images
        self.source_sizes: dict[str, tuple[int, int]] = {}  # camera -> (width, height) the driver sends
        self.uncalibrated: set[str] = set()  # cameras whose camera_info says "uncalibrated" (K all zero)

    def image(self, camera: str, msg: Image) -> tuple[np.ndarray, float]:
        """-> ((size, size, 3) uint8 RGB cropped and resized, capture stamp s)."""
        frame = convert.frame_from_image(msg)
        try:
            image = self.fits[camera].image(frame.image)
        except ValueError as err:  # a crop box that does not fit this driver's images
            raise convert.MessageError(f"{camera}: {err} (the actor's camera_crop parameter)") from None
        self.source_sizes[camera] = (msg.width, msg.height)
        return image, frame.t_capture

    def on_info(self, camera: str, msg: CameraInfo) -> None:
        """Keep the intrinsics of the observation's images; a malformed CameraInfo raises. K[0] == 0 is the ROS
        convention for an uncalibrated camera (usb_cam without camera_info_url): reported as such, not refused."""
        if msg.k[0] == 0.0:
            self.calibrations.pop(camera, None)
            self.uncalibrated.add(camera)
            return
        self.uncalibrated.discard(camera)
        try:
            p = tuple(msg.p) if any(msg.p) else ()  # an all-zero P (some drivers) reads as [K | 0]
            calib = CameraCalibration(
                msg.width, msg.height, tuple(msg.k), tuple(msg.d), msg.distortion_model or "plumb_bob", tuple(msg.r), p
            )
            self.calibrations[camera] = self.fits[camera].calibration(calib)
        except ValueError as err:
            raise convert.MessageError(f"{camera}/camera_info unusable: {err}") from None

    def info_table(self) -> list[tuple[str, type, QoSProfile, Callable[[Any], None]]]:
        """(relative topic, type, QoS, callback) of each camera's camera_info subscription."""
        return [
            (topics.camera_info_topic(cam), CameraInfo, topics.SENSOR_QOS, lambda msg, cam=cam: self.on_info(cam, msg))
            for cam in self.fits
        ]

    def report(self) -> dict[str, dict]:
        """camera -> {size, source_size, crop, K, D, distortion_model} for `actor_status`: K once camera_info came,
        None while it says the camera is uncalibrated (calibrate it: `robot-rl calibrate intrinsics`)."""
        out = {}
        for cam, fit in self.fits.items():
            entry: dict[str, Any] = {"size": [fit.width, fit.height]}
            if cam in self.source_sizes:
                op = fit.crop_resize(*self.source_sizes[cam])
                entry |= {"source_size": list(self.source_sizes[cam]), "crop": list(op.box(*self.source_sizes[cam]))}
            if cam in self.uncalibrated:
                entry["K"] = None
            elif cam in self.calibrations:
                calib = self.calibrations[cam]
                entry |= {"K": list(calib.K), "D": list(calib.D), "distortion_model": calib.distortion_model}
            out[cam] = entry
        return out


def table(layout: ActorLayout, cameras: CameraInputs | None = None) -> list[tuple[str, type, QoSProfile, Converter]]:
    """(input = relative topic name, message type, QoS, converter) of every input this layout needs (images through
    `cameras`: centred crops when None)."""
    cameras = cameras or CameraInputs(layout)
    rows: list[tuple[str, type, QoSProfile, Converter]] = [
        (obs.INPUT_JOINTS, JointState, topics.STATE_QOS, lambda msg: joints(msg, layout.joint_names)),
        (obs.INPUT_POSE, PoseStamped, topics.STATE_QOS, pose),
        (obs.INPUT_TWIST, TwistStamped, topics.STATE_QOS, twist),
        (obs.INPUT_GRIPPER, JointState, topics.STATE_QOS, gripper),
    ]
    if layout.success_from == "topic":
        rows.append((obs.INPUT_SUCCESS, Bool, topics.STATE_QOS, success))
    if layout.obs_mode == "state":
        parts = layout.task.object_state_layout
        rows.append(
            (
                obs.INPUT_OBJECT,
                Float32MultiArray,
                topics.STATE_QOS,
                lambda msg: (task_convert.object_state_from_msg(msg, parts), None),
            )
        )
    rows += [
        (obs.image_input(cam), Image, topics.SENSOR_QOS, lambda msg, cam=cam: cameras.image(cam, msg))
        for cam in layout.image_cameras
    ]
    return rows
