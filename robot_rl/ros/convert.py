"""Every conversion between robot_rl's core types and ROS 2 messages, in one place.

Conventions (franka_ros2-like, so our nodes can sit next to real drivers):

- Robot state is three messages with one shared stamp (the capture time; simulation time under `/clock`):
  `joint_states` (sensor_msgs/JointState: arm joints, position rad + velocity rad/s),
  `ee_pose` (geometry_msgs/PoseStamped of the tool point in the base frame), and `ee_twist`
  (geometry_msgs/TwistStamped: measured tool velocity, base frame).
- The gripper is a sensor_msgs/JointState of its two finger joints (as franka_gripper publishes):
  each position is one finger's travel in metres, so the finger gap is their sum.
- A camera frame is sensor_msgs/Image, encoding rgb8, plus sensor_msgs/CameraInfo with K from the
  CameraSpec (plumb_bob, no distortion: the sim renders an ideal pinhole).
- An end-effector command is geometry_msgs/TwistStamped: tool velocity (m/s, rad/s) in the base frame.
  The robot applies it for each control period `dt_s`: delta = twist * dt_s (`command_from_twist`).
- The gripper command is std_msgs/Float64: closing in [0, 1] (0 open, 1 closed).

Message -> core functions raise `MessageError` (with what was wrong and what was expected) on malformed
input; nodes log it and drop the message.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64, Header

from robot_rl.interfaces import CameraSpec, EECommand, Frame, RobotState
from robot_rl.ros import image_convert

RGB8 = "rgb8"


class MessageError(ValueError):
    """A message that cannot be used: wrong sizes, non-finite numbers, unknown encoding or frame."""


# --- time ---------------------------------------------------------------------------------
def stamp_from_seconds(t_s: float) -> Time:
    """Seconds (sim time or epoch time) -> builtin_interfaces/Time."""
    if not (math.isfinite(t_s) and t_s >= 0):
        raise MessageError(f"a stamp needs finite seconds >= 0, got {t_s!r}")
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def seconds_from_stamp(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _header(t_s: float, frame_id: str) -> Header:
    return Header(stamp=stamp_from_seconds(t_s), frame_id=frame_id)


def _finite(name: str, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if values.shape != shape:
        raise MessageError(f"{name} has shape {values.shape}, expected {shape}")
    if not np.all(np.isfinite(values)):
        raise MessageError(f"{name} has non-finite values {values.tolist()}")
    return values


# --- robot state ----------------------------------------------------------------------------
def joint_state_msg(joint_names: tuple[str, ...], q_rad: np.ndarray, dq_rad_s: np.ndarray, t_s: float) -> JointState:
    """Arm joints: position (rad) and velocity (rad/s); effort left empty."""
    n = len(joint_names)
    q = _finite("q_rad", np.asarray(q_rad, dtype=np.float64), (n,))
    dq = _finite("dq_rad_s", np.asarray(dq_rad_s, dtype=np.float64), (n,))
    return JointState(header=_header(t_s, ""), name=list(joint_names), position=q.tolist(), velocity=dq.tolist())


def pose_msg(pos_m: np.ndarray, quat_wxyz: np.ndarray, t_s: float, frame_id: str) -> PoseStamped:
    msg = PoseStamped(header=_header(t_s, frame_id))
    p = _finite("pos_m", np.asarray(pos_m, dtype=np.float64), (3,))
    q = _finite("quat_wxyz", np.asarray(quat_wxyz, dtype=np.float64), (4,))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = p.tolist()
    msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = q.tolist()
    return msg


def twist_msg(linear: np.ndarray, angular: np.ndarray, t_s: float, frame_id: str) -> TwistStamped:
    """Velocities: linear (m/s), angular (rad/s), both (3,) in `frame_id`."""
    msg = TwistStamped(header=_header(t_s, frame_id))
    v = _finite("linear", np.asarray(linear, dtype=np.float64), (3,))
    w = _finite("angular", np.asarray(angular, dtype=np.float64), (3,))
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = v.tolist()
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = w.tolist()
    return msg


def gripper_state_msg(finger_joints: tuple[str, str], width_m: float, t_s: float) -> JointState:
    """The finger gap as two finger joints, each at half the gap (metres)."""
    if not math.isfinite(width_m):
        raise MessageError(f"gripper width must be finite, got {width_m!r}")
    return JointState(header=_header(t_s, ""), name=list(finger_joints), position=[width_m / 2, width_m / 2])


def robot_state_msgs(
    state: RobotState,
    joint_names: tuple[str, ...],
    finger_joints: tuple[str, str],
    frame_id: str,
    ee_angvel_rad_s: np.ndarray | None = None,
) -> tuple[JointState, PoseStamped, TwistStamped, JointState]:
    """RobotState -> (joint_states, ee_pose, ee_twist, gripper_state), all stamped `state.t_capture`."""
    t = state.t_capture
    angvel = np.zeros(3) if ee_angvel_rad_s is None else ee_angvel_rad_s
    return (
        joint_state_msg(joint_names, state.q_rad, state.dq_rad_s, t),
        pose_msg(state.ee_pos_m, state.ee_quat_wxyz, t, frame_id),
        twist_msg(state.ee_linvel_m_s, angvel, t, frame_id),
        gripper_state_msg(finger_joints, state.gripper_width_m, t),
    )


def _ordered(msg: JointState, names: tuple[str, ...], field: str) -> np.ndarray:
    values = list(getattr(msg, field))
    if len(values) != len(msg.name):
        raise MessageError(f"JointState has {len(msg.name)} names but {len(values)} {field} values")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(f"JointState lacks joints {missing}; it has {list(msg.name)}")
    return np.array([values[index[n]] for n in names], dtype=np.float64)


def robot_state_from_msgs(
    joints: JointState,
    pose: PoseStamped,
    twist: TwistStamped,
    gripper: JointState,
    joint_names: tuple[str, ...],
    finger_joints: tuple[str, str],
) -> RobotState:
    """Inverse of `robot_state_msgs` (joints picked by name, in `joint_names` order); t_capture = joint stamp."""
    q = _finite("joint position", _ordered(joints, joint_names, "position"), (len(joint_names),))
    dq = _finite("joint velocity", _ordered(joints, joint_names, "velocity"), (len(joint_names),))
    p, o, v = pose.pose.position, pose.pose.orientation, twist.twist.linear
    fingers = _finite("finger position", _ordered(gripper, tuple(finger_joints), "position"), (2,))
    return RobotState(
        q_rad=q,
        dq_rad_s=dq,
        ee_pos_m=_finite("ee position", np.array([p.x, p.y, p.z]), (3,)),
        ee_quat_wxyz=_finite("ee orientation", np.array([o.w, o.x, o.y, o.z]), (4,)),
        ee_linvel_m_s=_finite("ee linear velocity", np.array([v.x, v.y, v.z]), (3,)),
        gripper_width_m=float(fingers.sum()),
        t_capture=seconds_from_stamp(joints.header.stamp),
    )


# --- cameras --------------------------------------------------------------------------------
def image_msg(frame: Frame, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB -> Image rgb8, stamped with the capture time."""
    img = np.asarray(frame.image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise MessageError(f"a frame must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    h, w, _ = img.shape
    return Image(
        header=_header(frame.t_capture, frame_id),
        height=h,
        width=w,
        encoding=RGB8,
        is_bigendian=0,
        step=3 * w,
        data=np.ascontiguousarray(img).tobytes(),
    )


def frame_from_image(msg: Image) -> Frame:
    """Image in any colour encoding drivers publish (rgb8, bgr8, rgba8, bgra8, mono8, yuv422_yuy2, yuv422; rows of
    `step` bytes) -> Frame with an (H, W, 3) uint8 RGB array (robot_rl.ros.image_convert)."""
    try:
        image = image_convert.to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
    except image_convert.ImageError as err:
        raise MessageError(str(err)) from None
    return Frame(image=image, t_capture=seconds_from_stamp(msg.header.stamp))


def camera_info_msg(spec: CameraSpec, t_s: float) -> CameraInfo:
    """CameraInfo of an ideal pinhole: K from the spec, P = [K | 0], no distortion."""
    if len(spec.K) != 9:
        raise MessageError(f"CameraSpec {spec.name!r} K must have 9 numbers (row-major 3x3), got {len(spec.K)}")
    k = [float(x) for x in spec.K]
    return CameraInfo(
        header=_header(t_s, spec.frame_id),
        height=spec.height,
        width=spec.width,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=k,
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0],
    )


def camera_spec_from_info(msg: CameraInfo, name: str, rate_hz: float) -> CameraSpec:
    k = _finite("K", np.array(msg.k, dtype=np.float64), (9,))
    return CameraSpec(
        name=name,
        width=msg.width,
        height=msg.height,
        rate_hz=rate_hz,
        K=tuple(k.tolist()),
        frame_id=msg.header.frame_id,
    )


# --- commands -------------------------------------------------------------------------------
def twist_from_command(cmd: EECommand, dt_s: float, t_s: float, frame_id: str) -> TwistStamped:
    """EECommand delta over one control period -> the tool velocity that moves it in `dt_s`."""
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise MessageError(f"dt_s must be positive seconds, got {dt_s!r}")
    return twist_msg(np.asarray(cmd.delta_pos_m) / dt_s, np.asarray(cmd.delta_rotvec_rad) / dt_s, t_s, frame_id)


def velocity_from_twist(msg: TwistStamped, frame_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Twist -> (linear m/s (3,), angular rad/s (3,)); it must be finite and in `frame_id` (empty reads as `frame_id`)."""
    if msg.header.frame_id not in ("", frame_id):
        raise MessageError(
            f"twist in frame {msg.header.frame_id!r}; commands must be in {frame_id!r} (or leave it empty)"
        )
    lin, ang = msg.twist.linear, msg.twist.angular
    v = _finite("twist linear", np.array([lin.x, lin.y, lin.z]), (3,))
    w = _finite("twist angular", np.array([ang.x, ang.y, ang.z]), (3,))
    return v, w


def target_from_pose(msg: PoseStamped, frame_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Pose target -> (position m (3,), unit quaternion wxyz (4,)); finite, in `frame_id` (empty reads as it),
    with a quaternion of non-zero norm (normalised here)."""
    if msg.header.frame_id not in ("", frame_id):
        raise MessageError(
            f"pose target in frame {msg.header.frame_id!r}; targets must be in {frame_id!r} (or leave it empty)"
        )
    p, o = msg.pose.position, msg.pose.orientation
    pos = _finite("pose target position", np.array([p.x, p.y, p.z]), (3,))
    quat = _finite("pose target orientation", np.array([o.w, o.x, o.y, o.z]), (4,))
    norm = float(np.linalg.norm(quat))
    if not 0.5 < norm < 1.5:
        raise MessageError(f"pose target orientation has norm {norm:.3g}; send a unit quaternion")
    return pos, quat / norm


def command_from_twist(msg: TwistStamped, dt_s: float, gripper: float, frame_id: str) -> EECommand:
    """Tool velocity held for `dt_s` -> EECommand delta (twist * dt_s) with the given gripper closing."""
    v, w = velocity_from_twist(msg, frame_id)
    return EECommand(delta_pos_m=v * dt_s, delta_rotvec_rad=w * dt_s, gripper=float(gripper))


def gripper_command_msg(closing: float) -> Float64:
    return Float64(data=float(closing))


def gripper_from_msg(msg: Float64) -> float:
    """Closing in [0, 1]; non-finite is an error, values outside are left for the safety filter to clamp."""
    if not math.isfinite(msg.data):
        raise MessageError(f"gripper command must be a finite closing in [0, 1], got {msg.data!r}")
    return float(msg.data)
