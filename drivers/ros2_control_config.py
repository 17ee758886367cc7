"""`Ros2ControlConfig`: the parameters of `Ros2ControlBridge` (adapter_ros2_control.py) and their preset files.

`ros2_control_<preset>.yaml` next to this file holds the defaults for one driver + controller pair (franka_ros2 +
CRISP, the UR driver + FZI); `config_with_preset` reads one, and the arm node overrides any field from its
`ros2_control.<field>` parameters. Kept apart from the bridge so it can be read and validated without rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import yaml

from robot_rl_drivers.adapters import COMMAND_MODES

PRESET_DIR = Path(__file__).resolve().parent
GRIPPER_COMMAND_TYPES = ("float64", "float64_multi_array")
GRIPPER_COMMAND_VALUES = ("closing", "width")


@dataclass(frozen=True)
class Ros2ControlConfig:
    """Parameters of the bridge (ROS parameters `ros2_control.<field>` of the arm node). Topics are absolute."""

    preset: str = "franka"  # defaults from ros2_control_<preset>.yaml: franka | ur | none (only the values below)
    joint_states_topic: str = "/joint_states"  # the driver's sensor_msgs/JointState
    joint_names: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))  # the driver's arm joints, base to tip
    pose_topic: str = "/tcp_pose"  # geometry_msgs/PoseStamped of the tool in the base frame
    twist_topic: str = ""  # geometry_msgs/TwistStamped of the tool; "" = differentiate the pose
    # pose: PoseStamped targets on pose_command_topic; velocity: twists on velocity_command_topic
    command_mode: str = "pose"
    pose_command_topic: str = "/cartesian_controller/target_pose"  # PoseStamped target, streamed every period
    velocity_command_topic: str = "/forward_twist_controller/commands"  # Float64MultiArray [vx vy vz wx wy wz]
    command_frame_id: str = "base"  # frame_id on pose targets (the controller's base frame)
    gripper_state_topic: str = ""  # JointState of the fingers (their positions sum to the gap); "" = no gripper
    gripper_joint_names: tuple[str, ...] = ()  # finger joints in gripper_state_topic; () = every position in it
    gripper_command_topic: str = ""  # "" = the gripper is not commanded
    gripper_command_type: str = "float64_multi_array"  # float64 | float64_multi_array (a forward command controller)
    gripper_command_value: str = "width"  # width: finger gap in m; closing: 0 open .. 1 closed
    gripper_action: str = ""  # "" | franka (franka_gripper's Move/Grasp) | parallel_gripper (ParallelGripperCommand)
    gripper_action_namespace: str = "/franka_gripper"  # franka: the gripper node; parallel_gripper: the action itself
    gripper_speed_m_s: float = 0.1  # franka Move / Grasp speed
    gripper_force_n: float = 20.0  # franka Grasp force; ParallelGripperCommand max effort
    gripper_closed_position: float = 0.0  # 0: finger positions sum to the gap; > 0: one joint, 0 open .. this closed
    gripper_max_width_m: float = 0.08  # fully open finger gap
    stale_after_s: float = 0.5  # the driver is lost (a fault) when joint states or poses stop for this long
    connect_timeout_s: float = 5.0  # configure fails when the driver's first messages do not arrive in this time
    workspace_low_m: tuple[float, float, float] = (0.3, -0.3, 0.02)  # the arm's own box (the node's box applies too)
    workspace_high_m: tuple[float, float, float] = (0.75, 0.3, 0.5)
    home_pos_m: tuple[float, float, float] = (0.5, 0.0, 0.25)  # `reset` streams the tool here (pose_topic's frame)
    home_quat_wxyz: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # and turns it to this (tool down)

    def validate(self) -> None:
        for name, value, choices in (
            ("command_mode", self.command_mode, COMMAND_MODES),
            ("gripper_command_type", self.gripper_command_type, GRIPPER_COMMAND_TYPES),
            ("gripper_command_value", self.gripper_command_value, GRIPPER_COMMAND_VALUES),
        ):
            if value not in choices:
                raise ValueError(f"ros2_control.{name} {value!r}; choose one of {list(choices)}")
        if self.gripper_action and self.gripper_command_topic:
            raise ValueError(
                "ros2_control.gripper_action and gripper_command_topic are both set; the gripper takes one"
            )
        if not self.joint_names:
            raise ValueError("ros2_control.joint_names is empty; list the driver's arm joints, base to tip")
        quat = np.asarray(self.home_quat_wxyz, dtype=np.float64)
        if (
            len(self.home_pos_m) != 3
            or quat.shape != (4,)
            or not np.all(np.isfinite([*self.home_pos_m, *quat]))
            or abs(np.linalg.norm(quat) - 1.0) > 1e-3
        ):
            raise ValueError(
                f"ros2_control.home_pos_m {self.home_pos_m} / home_quat_wxyz {self.home_quat_wxyz}: "
                "need 3 finite metres and a unit quaternion (w, x, y, z)"
            )


def presets() -> tuple[str, ...]:
    return tuple(sorted(p.stem.removeprefix("ros2_control_") for p in PRESET_DIR.glob("ros2_control_*.yaml")))


def config_with_preset(preset: str) -> Ros2ControlConfig:
    """The defaults of a preset file (`none`: the dataclass defaults)."""
    if preset in ("", "none"):
        return Ros2ControlConfig(preset="none")
    path = PRESET_DIR / f"ros2_control_{preset}.yaml"
    if not path.is_file():
        raise ValueError(f"no ros2_control preset {preset!r}; choose one of {list(presets()) + ['none']}")
    values = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in fields(Ros2ControlConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path.name}: unknown fields {unknown}; valid fields are {sorted(known)}")
    return replace(
        Ros2ControlConfig(), preset=preset, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    )
