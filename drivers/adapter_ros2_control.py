"""`Ros2ControlBridge`: an arm that already has a ROS 2 driver (franka_ros2, ur_robot_driver, any ros2_control robot).

The bridge sits next to the running driver: it reads the driver's `joint_states` and a tool pose topic (and,
if there is one, a tool twist and the fingers' joint states) and commands a Cartesian controller, either by
streaming a PoseStamped target (CRISP's `target_pose`, FZI's cartesian_motion_controller `target_frame`: reliable,
depth 1, `command_frame_id` on every target) or a `std_msgs/Float64MultiArray` twist [vx, vy, vz, wx, wy, wz] to a
forward command controller. The gripper takes goals through its driver's actions (`gripper_action`, see
gripper_action.py) or a forward command controller's topic. Topic names are parameters; the defaults for
franka_ros2 + CRISP and the UR driver + FZI are in `ros2_control_<preset>.yaml` next to this file (`preset` picks
one; every other parameter overrides it; docs/hardware.md lists the controllers to launch). Joint names are
republished as joint1..N in the configured order, so the arm node's topics are the sim's. Commanding a
JointTrajectoryController through IK is out of scope.

The bridge runs its own small rclpy node (`<node>_bridge`) and executor thread, so it can wait for the
driver's first messages while the arm node is inside a lifecycle transition. A driver that goes silent
for `stale_after_s` is a fault (the arm node holds); so is a message the bridge cannot use (a NaN or inf in our
joints or the pose, fewer positions than names, some of our joints missing, a zero quaternion): it is kept out,
the last valid state stays the one read, and `recover` succeeds once valid messages flow again. A joint state
naming none of our joints (another publisher on a shared `/joint_states`, e.g. a gripper) is ignored. `reset`
streams targets to `home_pos_m` / `home_quat_wxyz` through the arm node's safety filter (no home move of its own).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

from robot_rl.interfaces import RobotSpec, RobotState, WorkspaceBox
from robot_rl.ros import convert, topics
from robot_rl_drivers.adapters import AdapterError, ArmAdapter
from robot_rl_drivers.gripper_action import GripperActions, GripperGoal
from robot_rl_drivers.ros2_control_config import (  # noqa: F401  (presets: re-exported for tests and callers)
    Ros2ControlConfig,
    config_with_preset,
    presets,
)

NO_PRESET = Ros2ControlConfig(preset="none")  # the default config: the dataclass values, no preset file


class Ros2ControlBridge(ArmAdapter):
    name = "ros2_control"
    config_class = Ros2ControlConfig
    with_preset = staticmethod(config_with_preset)

    def __init__(
        self,
        config: Ros2ControlConfig = NO_PRESET,
        control_rate_hz: float = 10.0,
        node_name: str = "arm_bridge",
    ):
        config.validate()
        super().__init__(config, control_rate_hz)
        self.command_mode = config.command_mode
        self.node_name, self.node_namespace = node_name, ""
        self._node: Node | None = None
        self._own_context: rclpy.Context | None = None
        self._thread: threading.Thread | None = None
        self._joints: tuple[np.ndarray, np.ndarray] | None = None  # last valid (q, dq) of our joints, config order
        self._joints_t = self._pose_t = -1.0  # monotonic time of the last message (valid or not) on each topic
        self._invalid: dict[str, str] = {}  # topic -> what was wrong with its latest message ("" when it was valid)
        self._foreign: list[str] = []  # names in the latest joint state that had none of our joints
        self._unreported = ""  # an invalid message `fault()` has not reported yet (one between two periods counts too)
        self._pose: np.ndarray | None = None  # (7,) x y z qw qx qy qz, last valid
        self._pose_stamp = 0.0
        self._last_target: tuple[np.ndarray, np.ndarray] | None = None  # last pose target sent (pos, quat wxyz)
        self._linvel, self._angvel = np.zeros(3), np.zeros(3)
        self._width_m = 0.0
        self.gripper: GripperActions | None = None

    def attach(self, node) -> None:
        self.node_name, self.node_namespace = f"{node.get_name()}_bridge", node.get_namespace()

    # --- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        cfg = self.config
        context = None
        if not rclpy.ok():  # standalone (tests, scripts): a context of our own
            self._own_context = context = rclpy.Context()
            rclpy.init(context=context)
        # not the process's --ros-args: a `-r __node:=arm` meant for the arm node would rename this one too
        node = self._node = Node(
            self.node_name, namespace=self.node_namespace, context=context, use_global_arguments=False
        )
        qos = qos_profile_sensor_data  # best effort subscribers match reliable and best-effort drivers alike
        node.create_subscription(JointState, cfg.joint_states_topic, self._on_joints, qos)
        node.create_subscription(PoseStamped, cfg.pose_topic, self._on_pose, qos)
        if cfg.twist_topic:
            node.create_subscription(TwistStamped, cfg.twist_topic, self._on_twist, qos)
        if cfg.gripper_state_topic:
            node.create_subscription(JointState, cfg.gripper_state_topic, self._on_gripper, qos)
        if cfg.command_mode == "pose":
            self._pub_cmd = node.create_publisher(PoseStamped, cfg.pose_command_topic, topics.COMMAND_QOS)
        else:
            self._pub_cmd = node.create_publisher(Float64MultiArray, cfg.velocity_command_topic, topics.COMMAND_QOS)
        gripper_type = Float64 if cfg.gripper_command_type == "float64" else Float64MultiArray
        self._pub_gripper = (
            node.create_publisher(gripper_type, cfg.gripper_command_topic, topics.COMMAND_QOS)
            if cfg.gripper_command_topic
            else None
        )
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(node)
        if cfg.gripper_action:
            self._connect_gripper()
        self._thread = threading.Thread(target=self._spin, name="ros2_control_bridge", daemon=True)
        self._thread.start()
        end = (
            time.monotonic() + cfg.connect_timeout_s
        )  # any message of ours will do: an invalid one is a fault, not a failure
        while time.monotonic() < end and (self._joints_t < 0 or self._pose_t < 0):
            time.sleep(0.02)
        if self._joints_t < 0 and self._foreign:
            foreign = self._foreign
            self.disconnect()
            raise AdapterError(
                f"{cfg.joint_states_topic} has none of the joints {list(cfg.joint_names)}; it has {foreign} "
                "(set ros2_control.joint_names)"
            )
        missing = [t for t, at in ((cfg.joint_states_topic, self._joints_t), (cfg.pose_topic, self._pose_t)) if at < 0]
        if missing:
            self.disconnect()
            raise AdapterError(
                f"no message on {missing} within {cfg.connect_timeout_s} s: is the driver running, and are "
                "the ros2_control.* topic parameters (or the preset) right for it?"
            )
        self._wait_for_controller(end)
        self.spec = RobotSpec(
            name=f"ros2_control:{cfg.preset}",
            joint_names=tuple(f"joint{i + 1}" for i in range(len(cfg.joint_names))),
            control_rate_hz=self.control_rate_hz,
            workspace=WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m)),
            max_step_m=0.03,
            max_step_rad=0.15,
            gripper_max_width_m=cfg.gripper_max_width_m,
        )

    def _wait_for_controller(self, end: float) -> None:
        """Until the controller's reader (and the gripper driver's, for a gripper on a topic) has matched our command
        writer: a target sent before is lost, and with no reader at all every one is."""
        writers = [w for w in (self._pub_cmd, self._pub_gripper) if w is not None]
        while time.monotonic() < end and any(w.get_subscription_count() == 0 for w in writers):
            time.sleep(0.02)
        unread = [w.topic_name for w in writers if w.get_subscription_count() == 0]
        if unread:
            self.disconnect()
            raise AdapterError(
                f"nothing subscribes to {' or '.join(unread)} within {self.config.connect_timeout_s} s: is the "
                "controller (or gripper driver) loaded and configured (ros2 control list_controllers), and is the "
                "command topic right for it?"
            )

    def _connect_gripper(self) -> None:
        """The gripper driver's action clients; configure fails when its package or its servers are missing."""
        cfg = self.config
        opened = GripperGoal(False, cfg.gripper_max_width_m, cfg.gripper_speed_m_s, cfg.gripper_force_n, 0.0)
        closed = GripperGoal(True, 0.0, cfg.gripper_speed_m_s, cfg.gripper_force_n, cfg.gripper_closed_position)
        try:
            self.gripper = GripperActions(self._node, cfg.gripper_action, cfg.gripper_action_namespace, opened, closed)
            self.gripper.wait_for_servers(cfg.connect_timeout_s)
        except AdapterError:
            self.disconnect()
            raise

    def _spin(self) -> None:
        executor = self._executor
        while self._node is not None:
            try:
                executor.spin_once(timeout_sec=0.05)
                if (gripper := self.gripper) is not None:
                    gripper.flush()
            except Exception:  # the context shut down under us (disconnect): leave
                return

    def disconnect(self) -> None:
        node, self._node = self._node, None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.gripper is not None:
            self.gripper.destroy()
            self.gripper = None
        if node is not None:
            self._executor.shutdown()
            node.destroy_node()
        if self._own_context is not None:
            rclpy.try_shutdown(context=self._own_context)
            self._own_context = None
        self._joints, self._pose, self._last_target = None, None, None
        self._joints_t = self._pose_t = -1.0
        self._invalid, self._foreign, self._unreported = {}, [], ""

    # --- driver messages (executor thread) ------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        names, ours = list(msg.name), self.config.joint_names
        if not any(n in names for n in ours):  # another publisher's joints (a gripper on a shared topic): not ours
            self._foreign = names
            return
        self._foreign = []
        problem = self._note(self.config.joint_states_topic, _joint_problem(msg, ours))
        if not problem:
            index = {n: i for i, n in enumerate(names)}
            q = np.array([msg.position[index[n]] for n in ours], dtype=np.float64)
            dq = (
                np.array([msg.velocity[index[n]] for n in ours], dtype=np.float64)
                if len(msg.velocity) == len(names)
                else np.zeros(len(ours))
            )
            self._joints = (q, dq)
        self._joints_t = time.monotonic()  # last: `connect` returns once it is set, with the state (or its fault) in

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        pose = np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z], dtype=np.float64)
        if not self._note(self.config.pose_topic, _pose_problem(pose)):
            pose[3:] /= np.linalg.norm(pose[3:])
            t = convert.seconds_from_stamp(msg.header.stamp) or time.monotonic()
            if not self.config.twist_topic and self._pose is not None and t > self._pose_stamp:
                self._linvel = (pose[:3] - self._pose[:3]) / (t - self._pose_stamp)
            self._pose, self._pose_stamp = pose, t
        self._pose_t = time.monotonic()  # last, as in _on_joints

    def _on_twist(self, msg: TwistStamped) -> None:
        v, w = msg.twist.linear, msg.twist.angular
        linvel, angvel = np.array([v.x, v.y, v.z]), np.array([w.x, w.y, w.z])
        if not self._note(
            self.config.twist_topic,
            "" if np.all(np.isfinite([*linvel, *angvel])) else f"has non-finite values {[*linvel, *angvel]}",
        ):
            self._linvel, self._angvel = linvel, angvel

    def _on_gripper(self, msg: JointState) -> None:
        cfg = self.config
        names = cfg.gripper_joint_names
        positions = [p for n, p in zip(msg.name, msg.position) if n in names] if names else list(msg.position)
        if not positions:  # a shared /joint_states message without the gripper's joints (the arm's): not ours
            return
        width = (
            float(sum(positions))
            if cfg.gripper_closed_position <= 0
            else cfg.gripper_max_width_m * (1.0 - min(max(positions[0] / cfg.gripper_closed_position, 0.0), 1.0))
        )
        if not self._note(
            self.config.gripper_state_topic,
            "" if np.isfinite(width) else f"has non-finite finger positions {positions}",
        ):
            self._width_m = width

    def _note(self, topic: str, problem: str) -> str:
        """Record what was wrong with the latest message on `topic` ("" when nothing); returns `problem`."""
        self._invalid[topic] = problem
        if problem:
            self._unreported = f"{topic} {problem}"
        return problem

    # --- state --------------------------------------------------------------------------------
    def fault(self) -> str:
        """The driver's problem now (see `_current_fault`), else an invalid message since the last call (so a
        single NaN between two control periods is reported once, then no longer), else ""."""
        current, (unreported, self._unreported) = self._current_fault(), (self._unreported, "")
        return current or (f"driver state invalid: {unreported}" if unreported else "")

    def _current_fault(self) -> str:
        """ "driver silent: ..." (with the time since the last message), "driver state invalid: ..." or ""."""
        if self._node is None:
            return ""
        now, cfg = time.monotonic(), self.config
        for topic, t in ((cfg.joint_states_topic, self._joints_t), (cfg.pose_topic, self._pose_t)):
            if now - t > cfg.stale_after_s:
                since = f"for {now - t:.2f} s" if t >= 0 else "since connect"
                foreign = (
                    f" (its messages name only {self._foreign})"
                    if topic == cfg.joint_states_topic and self._foreign
                    else ""
                )
                return f"driver silent: nothing on {topic} {since} (limit {cfg.stale_after_s} s){foreign}"
        invalid = [
            f"{topic} {why}" for topic, why in list(self._invalid.items()) if why
        ]  # a copy: the spin thread adds keys
        if invalid or self._joints is None or self._pose is None:
            return "driver state invalid: " + ("; ".join(invalid) or "no valid joint state and pose yet")
        return ""

    def read(self) -> RobotState:
        """The last valid state; AdapterError while the driver is silent or its latest message is invalid."""
        if self._node is None:
            raise AdapterError("the ros2_control bridge is not connected; configure the node first")
        fault = self._current_fault()
        if fault:
            raise AdapterError(fault)
        (q, dq), pose = self._joints, self._pose
        return RobotState(
            q_rad=q.copy(),
            dq_rad_s=dq.copy(),
            ee_pos_m=pose[:3].copy(),
            ee_quat_wxyz=pose[3:].copy(),
            ee_linvel_m_s=self._linvel.copy(),
            gripper_width_m=self._width_m,
            t_capture=self._joints_t,
        )

    def home_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.config.home_pos_m, dtype=np.float64), np.array(
            self.config.home_quat_wxyz, dtype=np.float64
        )

    def ee_angvel_rad_s(self) -> np.ndarray:
        return self._angvel.copy()

    # --- commands -----------------------------------------------------------------------------
    def send_pose_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        if self.command_mode != "pose":
            return super().send_pose_target(pos_m, quat_wxyz)
        now_s = self._node.get_clock().now().nanoseconds * 1e-9
        self._pub_cmd.publish(convert.pose_msg(pos_m, quat_wxyz, now_s, self.config.command_frame_id))
        self._last_target = (np.array(pos_m, dtype=np.float64), np.array(quat_wxyz, dtype=np.float64))

    def send_velocity(self, linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> None:
        if self.command_mode != "velocity":
            return super().send_velocity(linvel_m_s, angvel_rad_s)
        self._pub_cmd.publish(Float64MultiArray(data=[*map(float, linvel_m_s), *map(float, angvel_rad_s)]))

    def set_gripper(self, closing: float) -> None:
        if self.gripper is not None:
            self.gripper.command(closing)
        if self._pub_gripper is None:
            return
        cfg = self.config
        value = closing if cfg.gripper_command_value == "closing" else cfg.gripper_max_width_m * (1.0 - closing)
        self._pub_gripper.publish(
            Float64(data=float(value))
            if cfg.gripper_command_type == "float64"
            else Float64MultiArray(data=[float(value)])
        )

    def hold(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Pose mode: the controller's target stays at the last one sent (already within the node's
        max_target_lead_m of the tool), so the arm settles there instead of being pulled back against its
        own motion to a measured pose that lags by the driver's latency; the measured pose if none was sent.
        Velocity mode: a zero twist."""
        if self._node is None or self._pose is None:  # not connected, or no valid pose yet: nothing to hold at
            return None
        if self.command_mode == "velocity":
            self.send_velocity(np.zeros(3), np.zeros(3))
            return None
        pos, quat = self._last_target if self._last_target is not None else (self._pose[:3], self._pose[3:])
        self.send_pose_target(pos, quat)
        return pos.copy(), quat.copy()

    def recover(self) -> None:
        fault = self._current_fault()
        if fault:
            raise AdapterError(f"cannot recover: {fault}")


def _joint_problem(msg: JointState, ours: tuple[str, ...]) -> str:
    """What is wrong with a joint state that names some of our joints ("" when it is usable)."""
    names = list(msg.name)
    missing = [n for n in ours if n not in names]
    if missing:
        return f"lacks joints {missing} (it has {names})"
    if len(msg.position) != len(names):
        return f"has {len(names)} names but {len(msg.position)} positions"
    index = {n: i for i, n in enumerate(names)}
    bad = [n for n in ours if not np.isfinite(msg.position[index[n]])]
    if len(msg.velocity) == len(names):
        bad += [f"{n} velocity" for n in ours if not np.isfinite(msg.velocity[index[n]])]
    return f"has non-finite values for {bad}" if bad else ""


def _pose_problem(pose: np.ndarray) -> str:
    """What is wrong with a tool pose (x y z qw qx qy qz) ("" when it is usable)."""
    if not np.all(np.isfinite(pose)):
        return f"has non-finite values {pose.tolist()}"
    if np.linalg.norm(pose[3:]) < 1e-6:
        return "has a zero quaternion"
    return ""
