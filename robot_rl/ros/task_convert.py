"""The task topics' messages: `task/success` (std_msgs/Bool) and `task/object_state` (std_msgs/Float32MultiArray).

An object state travels as a flat float32 array whose `layout.dim` names its parts in order, one
dimension per part (label = part name, size = stride = its length), e.g. for pick_cube
`cube_pos 3, cube_quat 4, cube_to_tcp 3`. A reader checks the labels against the layout it expects,
so a sim running another task is caught instead of feeding the policy the wrong numbers.
These messages carry no header: readers stamp them with their ROS-clock receipt time.
"""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from robot_rl.ros.convert import MessageError


def object_state_msg(values: np.ndarray, layout: tuple[tuple[str, int], ...]) -> Float32MultiArray:
    """float32 (sum of sizes,) + ((name, size), ...) -> a labelled Float32MultiArray."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    total = sum(n for _, n in layout)
    if flat.shape != (total,):
        raise MessageError(f"object state has {flat.size} values, its layout {list(layout)} needs {total}")
    msg = Float32MultiArray(data=flat.tolist())
    msg.layout.dim = [MultiArrayDimension(label=name, size=n, stride=n) for name, n in layout]
    return msg


def object_state_from_msg(msg: Float32MultiArray, layout: tuple[tuple[str, int], ...]) -> np.ndarray:
    """Labelled Float32MultiArray -> float32 (sum of sizes,); its labels (if any) must match `layout`."""
    values = np.asarray(msg.data, dtype=np.float32)
    got = tuple((d.label, int(d.size)) for d in msg.layout.dim)
    if got and got != tuple(layout):
        raise MessageError(
            f"object state is laid out as {list(got)}, expected {list(layout)} (is the robot running another task?)"
        )
    total = sum(n for _, n in layout)
    if values.shape != (total,):
        raise MessageError(f"object state has {values.size} values, expected {total} laid out as {list(layout)}")
    if not np.all(np.isfinite(values)):
        raise MessageError(f"object state has non-finite values {values.tolist()}")
    return values
