"""The arm driver node: one generic ROS 2 lifecycle node, the arm behind it chosen by the `adapter` parameter.

    robot-rl-arm-node --ros-args -r __ns:=/robot_1 --params-file launch/config/arm_franka.yaml

It publishes and consumes exactly the robot topics of the simulated robot (`robot_rl.nodes.topics`), so
an actor cannot tell them apart: `joint_states`, `ee_pose`, `ee_twist`, `gripper_state` out at
`control_rate_hz` (stamped with the node's clock at capture); `ee_command` (TwistStamped),
`ee_target` (PoseStamped) and `gripper_command` (Float64) in. Extra, hardware-only interfaces:

| name        | type              | what                                                                       |
|-------------|-------------------|----------------------------------------------------------------------------|
| estop       | std_msgs/Bool     | true latches an emergency stop: the arm holds and ignores commands until   |
|             |                   | `recover` succeeds (which it refuses while the last estop value is true)   |
| recover     | std_srvs/Trigger  | clear a latched estop and a driver fault (the adapter's recovery)          |
| reset       | std_srvs/Trigger  | move to the adapter's home pose and open the gripper (blocking; no task    |
|             |                   | randomisation on hardware); refused unless active, without estop or fault  |
| arm_status  | std_msgs/String   | JSON: lifecycle state, holding and why, estop, fault, counters; on every   |
|             |                   | change and at `status_rate_hz` (reliable, transient local: late joiners    |
|             |                   | get the last one)                                                          |

Lifecycle: configure connects the adapter (state is published from then on, the arm holds), activate
accepts commands, deactivate holds and ignores them, cleanup holds and disconnects. `autostart` walks
the transitions at start so a node table needs no lifecycle manager.

Every period (one timer, the one main loop): the adapter ticks (simulation steps physics), faults are
checked, the latest command passes `robot_rl.safety.SafetyFilter` (non-finite rejected, step, speed,
acceleration and rotation limited, target kept in the workspace box or, when outside it, brought back at
those limits) or the arm holds (inactive, estop, fault, a non-finite measured or commanded state, or no
valid command for `watchdog_timeout_s`), then the state is published. Every motion command reaches the
arm through that filter; only `reset` (the adapter's own home move) and the gripper (clamped to [0, 1])
bypass it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from robot_rl.interfaces import EECommand, WorkspaceBox
from robot_rl.nodes import convert, topics
from robot_rl.nodes.guard import Refusals
from robot_rl.nodes.params import declare_config
from robot_rl.safety import CommandWatchdog, SafetyFilter, SafetyLimits
from robot_rl_drivers.adapters import ADAPTERS, AdapterError, AdapterRobot, ArmAdapter, adapter_class
from robot_rl_drivers.arm_pose import rotation_between

ESTOP = "estop"
RECOVER = "recover"
ARM_STATUS = "arm_status"
AUTOSTART = ("unconfigured", "inactive", "active")
# estop: reliable, volatile (matches any reliable publisher, `ros2 topic pub` included); the latch is ours.
ESTOP_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class ArmNodeConfig:
    """ROS parameters of the arm node (the adapter's own are `<adapter>.<field>`, see each adapter's config)."""

    adapter: str = "sim"  # sim | franka | ur | ros2_control
    autostart: str = "active"  # lifecycle state to reach at start: unconfigured | inactive | active
    control_rate_hz: float = 50.0  # state published and commands applied at this rate (node clock)
    watchdog_timeout_s: float = 0.5  # hold the arm when no valid ee_command/ee_target arrived for this long
    workspace_low_m: tuple[float, float, float] = (0.3, -0.25, 0.012)  # tool target box, base frame, lower corner
    workspace_high_m: tuple[float, float, float] = (0.7, 0.25, 0.32)  # upper corner
    workspace_file: str = ""  # workspace YAML from `robot-rl calibrate workspace`; replaces the two corners above
    max_step_m: float = 0.03  # safety filter: largest translation per control period
    max_step_rad: float = 0.15  # safety filter: largest rotation per control period
    max_speed_m_s: float = 0.30  # safety filter: translation speed limit
    max_angvel_rad_s: float = 1.5  # safety filter: rotation speed limit
    max_accel_m_s2: float = 3.0  # safety filter: limit on the change of commanded velocity
    max_target_lead_m: float = 0.06  # the tool target stays this close to the measured tool (no wind-up when blocked)
    status_rate_hz: float = 1.0  # arm_status heartbeat (it is also sent on every change)
    base_frame: str = topics.BASE_FRAME  # frame_id of poses, twists and accepted commands

    def validate(self) -> None:
        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter {self.adapter!r} is unknown; choose one of {sorted(ADAPTERS)}")
        if self.autostart not in AUTOSTART:
            raise ValueError(f"autostart {self.autostart!r} is unknown; choose one of {list(AUTOSTART)}")
        for name in ("control_rate_hz", "watchdog_timeout_s", "max_target_lead_m", "status_rate_hz"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")


def declare_prefixed(node: LifecycleNode, prefix: str, default: Any) -> Any:
    """Declare every field of the dataclass `default` as parameter `<prefix>.<field>`; the config with its values."""
    values = {}
    for f in dataclasses.fields(default):
        base, name = getattr(default, f.name), f"{prefix}.{f.name}"
        if node.has_parameter(name):  # declared already (a preset selector)
            values[f.name] = node.get_parameter(name).value
            continue
        # an empty list has no element type for ROS to infer: let the params file give it one
        descriptor = ParameterDescriptor(dynamic_typing=isinstance(base, tuple) and not base)
        value = node.declare_parameter(name, list(base) if isinstance(base, tuple) else base, descriptor).value
        if value is None:  # an empty list in a params file has no type either: ROS leaves it unset
            value = base
        elif isinstance(base, tuple):
            value = tuple(value)
        elif isinstance(base, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return dataclasses.replace(default, **values)


def workspace_box(cfg: ArmNodeConfig) -> WorkspaceBox:
    """The calibrated box of cfg.workspace_file, else the configured corners."""
    if cfg.workspace_file:
        from robot_rl_calibration.io import load_workspace

        return load_workspace(cfg.workspace_file)
    return WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m))


class ArmNode(LifecycleNode):
    """Safety filter, watchdog, estop and lifecycle around one `ArmAdapter`."""

    def __init__(self, **node_kw):
        super().__init__("arm", **node_kw)
        self.cfg = declare_config(self, ArmNodeConfig())
        self.cfg.validate()
        cfg = self.cfg
        self.adapter_cls = adapter_class(cfg.adapter)
        default = self.adapter_cls.config_class()
        with_preset = getattr(self.adapter_cls, "with_preset", None)  # defaults from a preset file (ros2_control)
        if with_preset is not None:
            default = with_preset(self.declare_parameter(f"{cfg.adapter}.preset", default.preset).value)
        self.adapter_cfg = declare_prefixed(self, cfg.adapter, default)
        if hasattr(self.adapter_cfg, "validate"):
            self.adapter_cfg.validate()
        self.dt_s = 1.0 / cfg.control_rate_hz
        self.safety = SafetyFilter(SafetyLimits(
            workspace=workspace_box(cfg), max_step_m=cfg.max_step_m,
            max_step_rad=cfg.max_step_rad, max_speed_m_s=cfg.max_speed_m_s, max_angvel_rad_s=cfg.max_angvel_rad_s,
            max_accel_m_s2=cfg.max_accel_m_s2))
        self.adapter: ArmAdapter | None = None
        self.robot: AdapterRobot | None = None
        self.active = False
        self.estop_latched, self.estop_pressed = False, False
        self.fault = ""
        self.hold_reason = "not configured"
        self.counts = {"applied": 0, "dropped": 0, "rejected": 0, "clipped": 0}
        self._last_status = ""
        self._clear_commands()
        self._make_io()

    def _make_io(self) -> None:
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, topics.STATE_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, topics.EE_POSE, topics.STATE_QOS)
        self.pub_twist = self.create_publisher(TwistStamped, topics.EE_TWIST, topics.STATE_QOS)
        self.pub_gripper = self.create_publisher(JointState, topics.GRIPPER_STATE, topics.STATE_QOS)
        self.pub_status = self.create_publisher(String, ARM_STATUS, STATUS_QOS)
        self.refusals = Refusals(self)  # whatever a callback raises on refuses the message, never ends the node
        guarded = self.refusals.guarded
        self.create_subscription(TwistStamped, topics.EE_COMMAND, guarded(topics.EE_COMMAND, self._on_ee_command), topics.COMMAND_QOS)
        self.create_subscription(PoseStamped, topics.EE_TARGET, guarded(topics.EE_TARGET, self._on_ee_target), topics.COMMAND_QOS)
        self.create_subscription(Float64, topics.GRIPPER_COMMAND, guarded(topics.GRIPPER_COMMAND, self._on_gripper_command), topics.COMMAND_QOS)
        self.create_subscription(Bool, ESTOP, guarded(ESTOP, self._on_estop), ESTOP_QOS)
        self.create_service(Trigger, RECOVER, self._on_recover)
        self.create_service(Trigger, topics.RESET, self._on_reset)
        self.create_timer(self.dt_s, self.step)
        self.create_timer(1.0 / self.cfg.status_rate_hz, lambda: self.publish_status(force=True))

    # --- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            adapter = self.adapter_cls(self.adapter_cfg, control_rate_hz=self.cfg.control_rate_hz)
            adapter.attach(self)
            adapter.connect()
            self.robot = AdapterRobot(adapter, max_target_lead_m=self.cfg.max_target_lead_m)
        except (AdapterError, ValueError) as err:
            self._set_fault(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self.adapter, self.fault = adapter, ""
        self.get_logger().info(f"arm adapter {self.cfg.adapter!r} connected: {adapter.spec.name}, "
                               f"{len(adapter.spec.joint_names)} joints, command_mode={adapter.command_mode}")
        self._hold("inactive")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._clear_commands()
        self.active = True
        self.hold_reason = "no command yet"
        self.get_logger().info("active: accepting ee_command, ee_target and gripper_command")
        self.publish_status()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self._hold("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._disconnect()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._disconnect()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._disconnect()
        return TransitionCallbackReturn.SUCCESS

    def _disconnect(self) -> None:
        self.active = False
        if self.robot is not None:
            try:
                self.robot.close()
            except AdapterError as err:
                self.get_logger().error(f"disconnect: {err}")
        self.robot, self.adapter = None, None
        self.hold_reason = "not configured"
        self.publish_status()

    # --- main loop ----------------------------------------------------------------------------
    def step(self) -> None:
        """One control period: tick, faults, command (or hold), state."""
        if self.robot is None:
            return
        try:
            self.adapter.tick(self.dt_s)
            fault = self.adapter.fault()
            if fault and fault != self.fault:
                self._set_fault(fault)
            self._apply_command()
            self._publish_state()
        except AdapterError as err:
            self._set_fault(str(err))
        self.publish_status()

    def _blocked(self) -> str:
        if not self.active:
            return "inactive"
        if self.estop_latched:
            return "estop"
        if self.fault:
            return "fault"
        if self.watchdog.expired(time.monotonic()):
            return "watchdog" if self._commanded else "no command yet"
        return ""

    def _apply_command(self) -> None:
        reason = self._blocked()
        if reason:
            if self.hold_reason != reason:
                if reason == "watchdog":
                    self.get_logger().warning(f"no ee_command for {self.cfg.watchdog_timeout_s} s: holding the arm")
                self._hold(reason)
            return
        robot = self.robot
        tool_m = np.asarray(robot.read().ee_pos_m, dtype=np.float64)
        if not np.isfinite(tool_m).all():  # a bad reading: never command from it (the filter checks the target)
            self.counts["rejected"] += 1
            self.get_logger().warning(f"non-finite measured tool position {tool_m}: holding", throttle_duration_sec=1.0)
            self._hold("non-finite state")
            return
        if self._target is not None:  # pose target: the delta to it, which the safety filter bounds per period
            pos, quat = self._target
            cmd = EECommand(pos - robot.target_pos_m, rotation_between(robot.target_quat_wxyz, quat), self._gripper)
        else:
            cmd = EECommand(self._vel_m_s * self.dt_s, self._angvel_rad_s * self.dt_s, self._gripper)
        result = self.safety.filter(cmd, robot.target_pos_m, self.dt_s, last_gripper=self._gripper)
        if result.rejected:
            self.counts["rejected"] += 1
            self.get_logger().warning(f"safety filter: {result.reason}", throttle_duration_sec=1.0)
            self._hold("rejected")
            return
        self.counts["clipped"] += bool(result.clipped)
        robot.command(result.command)
        self.counts["applied"] += 1
        self.hold_reason = ""

    def _hold(self, reason: str) -> None:
        self.hold_reason = reason
        self.safety.reset()
        if self.robot is not None:
            try:
                self.robot.hold()
            except AdapterError as err:
                self.get_logger().error(f"hold failed: {err}")
        self.publish_status()

    def _publish_state(self) -> None:
        state = self.robot.read()
        t_s = self.get_clock().now().nanoseconds * 1e-9
        joints, pose, twist, gripper = convert.robot_state_msgs(
            dataclasses.replace(state, t_capture=t_s), self.adapter.spec.joint_names, self.adapter.finger_joints,
            self.cfg.base_frame, ee_angvel_rad_s=self.adapter.ee_angvel_rad_s())
        self.pub_joints.publish(joints)
        self.pub_pose.publish(pose)
        self.pub_twist.publish(twist)
        self.pub_gripper.publish(gripper)

    def _set_fault(self, message: str) -> None:
        self.fault = message
        self.get_logger().error(f"arm fault, holding until `{RECOVER}` succeeds: {message}")
        self._hold("fault")

    def status(self) -> dict:
        lifecycle = self._state_machine.current_state[1]
        return {"lifecycle": lifecycle, "adapter": self.cfg.adapter, "connected": self.robot is not None,
                "holding": bool(self.hold_reason), "hold_reason": self.hold_reason, "estop": self.estop_latched,
                "estop_pressed": self.estop_pressed, "fault": self.fault, "commands_applied": self.counts["applied"],
                "commands_dropped": self.counts["dropped"], "commands_rejected": self.counts["rejected"],
                "commands_clipped": self.counts["clipped"], "refused": self.refusals.as_dict()}

    def publish_status(self, force: bool = False) -> None:
        """arm_status on change (counters of applied/clipped commands alone do not count as a change) or when forced."""
        status = self.status()
        key = json.dumps({k: v for k, v in status.items() if k not in ("commands_applied", "commands_clipped")})
        if force or key != self._last_status:
            self._last_status = key
            self.pub_status.publish(String(data=json.dumps(status)))

    # --- callbacks ----------------------------------------------------------------------------
    def _clear_commands(self) -> None:
        """Forget every command: the arm holds until a fresh one arrives."""
        self.watchdog = CommandWatchdog(self.cfg.watchdog_timeout_s)
        self._vel_m_s, self._angvel_rad_s = np.zeros(3), np.zeros(3)
        self._target: tuple[np.ndarray, np.ndarray] | None = None
        self._gripper = 0.0 if self.robot is None or self.robot.commanded_gripper is None else self.robot.commanded_gripper
        self._commanded = False
        self.safety.reset()

    def _drop(self, topic: str, err: Exception) -> None:
        self.counts["dropped"] += 1
        self.refusals.counts[topic] += 1  # arm_status's `refused` {topic: count}
        self.get_logger().warning(f"dropped {topic} message ({self.counts['dropped']} so far): {err}",
                                  throttle_duration_sec=1.0)

    def _accepting(self, topic: str) -> bool:
        if self.active and not self.estop_latched and not self.fault:
            return True
        self.get_logger().warning(f"ignoring {topic}: arm is holding ({self._blocked() or self.hold_reason})",
                                  throttle_duration_sec=2.0)
        return False

    def _on_ee_command(self, msg: TwistStamped) -> None:
        try:
            vel, angvel = convert.velocity_from_twist(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            return self._drop(topics.EE_COMMAND, err)
        if self._accepting(topics.EE_COMMAND):
            self._vel_m_s, self._angvel_rad_s, self._target = vel, angvel, None  # the newest command kind wins
            self._commanded = True
            self.watchdog.feed(time.monotonic())

    def _on_ee_target(self, msg: PoseStamped) -> None:
        try:
            target = convert.target_from_pose(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            return self._drop(topics.EE_TARGET, err)
        if self._accepting(topics.EE_TARGET):
            self._target, self._vel_m_s, self._angvel_rad_s = target, np.zeros(3), np.zeros(3)
            self._commanded = True
            self.watchdog.feed(time.monotonic())

    def _on_gripper_command(self, msg: Float64) -> None:
        try:
            closing = float(np.clip(convert.gripper_from_msg(msg), 0.0, 1.0))
        except convert.MessageError as err:
            return self._drop(topics.GRIPPER_COMMAND, err)
        if self._accepting(topics.GRIPPER_COMMAND) and self.robot is not None:
            self._gripper = closing
            try:
                self.robot.set_gripper(closing)
            except AdapterError as err:
                self._set_fault(str(err))

    def _on_estop(self, msg: Bool) -> None:
        self.estop_pressed = bool(msg.data)
        if msg.data and not self.estop_latched:
            self.estop_latched = True
            self.get_logger().error(f"EMERGENCY STOP on {ESTOP}: holding; commands ignored until `{RECOVER}` succeeds")
            self._hold("estop")
        self.publish_status()

    def _on_recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._recover()
        if response.success:
            self.get_logger().info(f"recover: {response.message}")
        else:
            self.get_logger().error(f"recover refused: {response.message}")
        self.publish_status()
        return response

    def _recover(self) -> tuple[bool, str]:
        if self.estop_pressed:
            return False, f"{ESTOP} is still true; publish false on {ESTOP} (release the stop) first"
        if self.robot is not None:
            try:
                self.adapter.recover()
            except AdapterError as err:
                return False, f"the arm did not recover: {err}"
            if self.adapter.fault():
                return False, f"the arm still reports a fault: {self.adapter.fault()}"
        was = [name for name, on in (("estop", self.estop_latched), ("fault", bool(self.fault))) if on]
        self.estop_latched, self.fault = False, ""
        self._clear_commands()
        self._hold("no command yet" if self.active else self.hold_reason)
        return True, f"recovered from {', '.join(was) or 'nothing'}; holding until a new command arrives"

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        reason = self._blocked()
        if reason not in ("", "watchdog", "no command yet") or self.robot is None:
            response.success = False
            response.message = f"cannot move home while {reason or self.hold_reason} (recover, or activate the node, first)"
            return response
        try:
            self.robot.go_home()
        except AdapterError as err:
            response.success, response.message = False, f"moving home failed: {err}"
            return response
        self._clear_commands()
        self._hold("no command yet")
        response.success = True
        response.message = f"moved home ({self.cfg.adapter} adapter); holding until a new command arrives"
        return response


def _help() -> str:
    """The module docstring, then every parameter with its default and comment (the node's, then each adapter's)."""
    def fields_of(cls: type, prefix: str) -> list[str]:
        lines = inspect.getsource(cls).splitlines()
        return [f"  {prefix}{line.strip()}" for line in lines if line.startswith("    ") and not line.startswith("     ")
                and ": " in line and " = " in line and not line.strip().startswith(("def ", "#", '"'))]

    usage = ("usage: robot-rl-arm-node --ros-args [-r __ns:=/robot_1] [--params-file FILE] "
             "[-p adapter:=sim|franka|ur|ros2_control] [-p <adapter>.<field>:=VALUE]")
    out = [__doc__.strip().split("\n\n")[0], usage, __doc__.strip().split("\n\n", 1)[1], "parameters:"]
    out += fields_of(ArmNodeConfig, "")
    for name in sorted(ADAPTERS):
        try:
            out += [f"parameters of adapter {name!r} (ROS parameters {name}.<field>):"]
            out += fields_of(adapter_class(name).config_class, f"{name}.")
        except ImportError as err:  # the sim adapter without the sim extra
            out += [f"  (not available here: {err})"]
    return "\n\n".join(out[:4]) + "\n" + "\n".join(out[4:])


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-arm-node`: `robot-rl-arm-node --ros-args -p adapter:=sim`."""
    args = sys.argv if argv is None else argv
    if "-h" in args[1:] or "--help" in args[1:]:
        print(_help())
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        try:
            node = ArmNode()
        except (ValueError, FileNotFoundError) as err:  # a bad parameter or file
            print(f"robot-rl-arm-node: {err}", file=sys.stderr)
            return 2
        if node.cfg.autostart != "unconfigured":
            node.trigger_configure()
            if node.cfg.autostart == "active" and node.robot is not None:
                node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node._disconnect()  # hold and close the arm whatever state the node is in
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
