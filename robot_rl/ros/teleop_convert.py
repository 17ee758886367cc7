"""The `teleop/command` message: a TeleopCommand as a sensor_msgs/Joy with a fixed layout.

Why Joy: one standard message carries the whole command atomically -- motion, gripper, engaged,
connected and events, with a stamp -- so the actor never pairs a twist from one message with a
button from another, and `ros2 topic echo` / rosbag2 read it without our packages. (TwistStamped
plus an event topic would split one decision across two streams that must be synchronised.)

    header.stamp     capture time of the command (the teleop node's clock)
    header.frame_id  "base": the twist is in the robot base frame
    axes[0:6]        twist vx, vy, vz, wx, wy, wz, normalised to [-1, 1]
    axes[6]          gripper closing in [0, 1]; NaN = no gripper input (keep the gripper as it is)
    buttons[0]       engaged (1: the person acts)
    buttons[1]       connected (0: the device is gone; the node still publishes: that is the heartbeat)
    buttons[2:7]     running counts of the events success, failure, rerecord, take_over, release
                     (robot_rl.interfaces.TELEOP_EVENTS order) since the node started

The node publishes at a fixed rate; a receiver (robot_rl.teleop.link.TeleopLink) that hears nothing
for its timeout treats the device as disconnected. Events are counts, so a lost message loses none.
"""

from __future__ import annotations

import math

import numpy as np
from sensor_msgs.msg import Joy

from robot_rl.interfaces import TELEOP_EVENTS, TeleopCommand
from robot_rl.ros.convert import MessageError, _header, seconds_from_stamp

N_AXES = 7
N_BUTTONS = 2 + len(TELEOP_EVENTS)


def teleop_command_msg(cmd: TeleopCommand, counts: dict[str, int], t_s: float, frame_id: str) -> Joy:
    """TeleopCommand + the sender's running event counts -> Joy (layout above), stamped `t_s`."""
    twist = np.asarray(cmd.twist, dtype=np.float64).reshape(-1)
    if twist.shape != (6,) or not np.all(np.isfinite(twist)):
        raise MessageError(f"a teleop twist must be 6 finite numbers, got {twist.tolist()}")
    gripper = float("nan") if cmd.gripper is None else float(np.clip(cmd.gripper, 0.0, 1.0))
    axes = [float(v) for v in np.clip(twist, -1.0, 1.0)] + [gripper]
    buttons = [int(cmd.engaged and cmd.connected), int(cmd.connected)] + [int(counts.get(e, 0)) for e in TELEOP_EVENTS]
    return Joy(header=_header(t_s, frame_id), axes=axes, buttons=buttons)


def teleop_fields_from_msg(msg: Joy, frame_id: str) -> dict:
    """Joy (layout above) -> keyword arguments of TeleopLink.receive (without t_s): twist, gripper, engaged,
    connected, counts, t_capture."""
    if msg.header.frame_id not in ("", frame_id):
        raise MessageError(f"teleop command in frame {msg.header.frame_id!r}; it must be in {frame_id!r}")
    if len(msg.axes) != N_AXES or len(msg.buttons) != N_BUTTONS:
        raise MessageError(
            f"a teleop command has {N_AXES} axes and {N_BUTTONS} buttons (robot_rl.ros.teleop_convert); "
            f"got {len(msg.axes)} and {len(msg.buttons)} -- is a raw joy topic remapped onto teleop/command?"
        )
    twist = np.asarray(msg.axes[:6], dtype=np.float64)
    if not np.all(np.isfinite(twist)):
        raise MessageError(f"teleop twist has non-finite values {twist.tolist()}")
    g = float(msg.axes[6])
    gripper = None if math.isnan(g) else float(np.clip(g, 0.0, 1.0))
    counts = {e: int(msg.buttons[2 + i]) for i, e in enumerate(TELEOP_EVENTS)}
    return {
        "twist": np.clip(twist, -1.0, 1.0),
        "gripper": gripper,
        "engaged": bool(msg.buttons[0]),
        "connected": bool(msg.buttons[1]),
        "counts": counts,
        "t_capture": seconds_from_stamp(msg.header.stamp),
    }
