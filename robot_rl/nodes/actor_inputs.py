"""The actor's robot inputs: which topics it reads and how each message becomes numbers for the assembler.

Each converter maps a message to (value, stamp_s): the value as `robot_rl.actor.observation` documents it,
the stamp the header's capture time in seconds, or None for unstamped messages (the node then uses its
ROS-clock receipt time). Converters raise `convert.MessageError` (a ValueError) on malformed messages.
Input names are the relative topic names, so `-r __ns:=/robot_1` and remaps apply as for any node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32MultiArray

from robot_rl.actor import observation as obs
from robot_rl.actor.layout import DEFAULT_JOINT_NAMES, ActorLayout
from robot_rl.nodes import convert, task_convert, topics

Converter = Callable[[Any], tuple[Any, float | None]]


def _stamp(msg: Any) -> float:
    return convert.seconds_from_stamp(msg.header.stamp)


def joints(msg: JointState, names: tuple[str, ...] = DEFAULT_JOINT_NAMES) -> tuple[np.ndarray, float]:
    """-> q_rad (len(names),) of the arm joints `names`, in that order (other joints in the message are ignored)."""
    index = {n: i for i, n in enumerate(msg.name)}
    if any(n not in index for n in names) or len(msg.position) != len(msg.name):
        raise convert.MessageError(f"joint_states needs positions of {list(names)}, got names {list(msg.name)} "
                                   f"and {len(msg.position)} positions (the actor's joint_names parameter picks them)")
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


def image(msg: Image) -> tuple[np.ndarray, float]:
    """-> (H, W, 3) uint8 RGB."""
    frame = convert.frame_from_image(msg)
    return frame.image, frame.t_capture


def table(layout: ActorLayout) -> list[tuple[str, type, QoSProfile, Converter]]:
    """(input = relative topic name, message type, QoS, converter) of every input this layout needs."""
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
        rows.append((obs.INPUT_OBJECT, Float32MultiArray, topics.STATE_QOS,
                     lambda msg: (task_convert.object_state_from_msg(msg, parts), None)))
    rows += [(obs.image_input(cam), Image, topics.SENSOR_QOS, image) for cam in layout.image_cameras]
    return rows
