"""The arm driver node: one generic ROS 2 lifecycle node, the arm behind it chosen by the `adapter` parameter.

    robot-rl-arm-node --ros-args -r __ns:=/robot_1 --params-file launch/config/arm_franka.yaml

It publishes and consumes exactly the robot topics of the simulated robot (`robot_rl.ros.topics`), so
an actor cannot tell them apart: `joint_states`, `ee_pose`, `ee_twist`, `gripper_state` out at
`control_rate_hz` (stamped with the node's clock at capture); `ee_command` (TwistStamped),
`ee_target` (PoseStamped) and `gripper_command` (Float64) in. Extra, hardware-only interfaces:

| name        | type              | what                                                                       |
|-------------|-------------------|----------------------------------------------------------------------------|
| estop       | std_msgs/Bool     | true latches an emergency stop: the arm holds and ignores commands until   |
|             |                   | `recover` succeeds (which it refuses while the last estop value is true)   |
| recover     | std_srvs/Trigger  | clear a latched estop and a driver fault (the adapter's recovery)          |
| reset       | std_srvs/Trigger  | move home and open the gripper: the adapter's own home move, else targets  |
|             |                   | streamed to its home pose at the safety limits (`arm_homing.py`); answers  |
|             |                   | when home or failed (timeout, estop, fault); refused unless active, without|
|             |                   | estop or fault                                                             |
| arm_status  | std_msgs/String   | JSON: lifecycle state, holding and why, estop, fault, reset, counters; on  |
|             |                   | every change and at `status_rate_hz` (reliable, transient local: late      |
|             |                   | joiners get the last one)                                                  |

Lifecycle: configure connects the adapter (state is published from then on, the arm holds), activate
accepts commands, deactivate holds and ignores them, cleanup holds and disconnects. `autostart` walks
the transitions at start so a node table needs no lifecycle manager.

Every period (one timer, the one main loop; `robot-rl-sim-node` drives the same `step` from its sim-time
loop): faults are checked, the latest command passes `robot_rl.safety.SafetyFilter` (non-finite rejected, step, speed,
acceleration and rotation limited, target kept in the workspace box or, when outside it, brought back at
those limits) or the arm holds (inactive, estop, fault, a non-finite measured or commanded state, or no
valid command for `watchdog_timeout_s`), the adapter ticks (simulation steps physics), then the state is
published. Every motion command reaches the arm through that filter; only an adapter's own home move and
the gripper (clamped to [0, 1]) bypass it. The thread running a period does so on SCHED_FIFO at
`control_priority` (60, above the actor's tick at 50) where the process may, from `wake_lead_ms` before the period
is due until it ends, ordinary between (robot_rl.acting.realtime.TickPriority, robot_rl.acting.wake): the watchdog
and the hold outrank every other thread of the machine, and a loaded machine still wakes the thread on time.
The command path is `arm_commands.py`, `reset` `arm_homing.py`, the parameters `arm_config.py`.

Driver faults never end the node, at any lifecycle stage: an adapter's `fault()`, a `read` that fails (a
silent driver) or a state that is unusable (`adapters.state_problem`: NaN or inf, wrong joint count) make the
arm hold, `arm_status.fault` say why (kept current: a silent driver's elapsed time grows), and one log line
at each transition (fault begins, its kind changes, its condition is gone); the state topics pause while
the state is unusable. `recover` clears the fault only once the adapter reports none and its state is valid.

The simulated robot of the sim setups (`robot_rl_sim.node.SimRobotNode`) is this class with the MuJoCo task
cell as its adapter and the sim-only extras beside it; it replaces `_declare_adapter`, `_workspace`,
`make_adapter`, `now_s`, `stamp_s`, `after_tick`, `run` and `close`.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from robot_rl.acting.cpu_latency import CpuLatencyHold
from robot_rl.acting.realtime import TickPriority
from robot_rl.acting.wake import WakeThread, WakeWindow
from robot_rl.interfaces import WorkspaceBox
from robot_rl.ros import convert, topics
from robot_rl.ros.guard import Refusals
from robot_rl.ros.params import declare_config
from robot_rl.safety import SafetyFilter, SafetyLimits
from robot_rl_drivers.adapters import AdapterError, AdapterRobot, ArmAdapter, state_problem
from robot_rl_drivers.arm_commands import ArmCommandPath
from robot_rl_drivers.arm_config import ArmNodeConfig, declare_adapter, help_text, workspace_box
from robot_rl_drivers.arm_faults import (  # noqa: F401  (the topic names and QoS: re-exported for tests)
    ARM_STATUS,
    ESTOP,
    ESTOP_QOS,
    RECOVER,
    STATUS_QOS,
    ArmFaults,
    fault_kind,
)
from robot_rl_drivers.arm_homing import ArmHoming

__all__ = ["ArmNode", "ArmNodeConfig", "workspace_box", "serve", "main"]


class ArmNode(ArmFaults, ArmHoming, ArmCommandPath, LifecycleNode):
    """Safety filter, watchdog, estop and lifecycle around one `ArmAdapter`."""

    paced_by_timer = True  # a wall timer calls `step`; the sim robot paces `step` itself (real_time_factor)

    def __init__(self, node_name: str = "arm", **node_kw):
        super().__init__(node_name, **node_kw)
        self.cfg = declare_config(self, ArmNodeConfig())
        self.cfg.validate()
        cfg = self.cfg
        self.adapter_cls, self.adapter_cfg = self._declare_adapter()
        self.dt_s = 1.0 / cfg.control_rate_hz
        self.tick_priority = TickPriority(cfg.control_priority)  # SCHED_FIFO while a period runs, where permitted
        self.wake = WakeWindow(self.dt_s, cfg.wake_lead_ms / 1e3)  # ... and from just before it is due
        self.wake_thread: WakeThread | None = None  # take_period_thread starts it
        self.cpu_latency: CpuLatencyHold | None = None  # ... and holds this
        self.safety = SafetyFilter(
            SafetyLimits(
                workspace=self._workspace(),
                max_step_m=cfg.max_step_m,
                max_step_rad=cfg.max_step_rad,
                max_speed_m_s=cfg.max_speed_m_s,
                max_angvel_rad_s=cfg.max_angvel_rad_s,
                max_accel_m_s2=cfg.max_accel_m_s2,
            )
        )
        self.adapter: ArmAdapter | None = None
        self.robot: AdapterRobot | None = None
        self.active = False
        self.estop_latched, self.estop_pressed = False, False
        self.fault = ""
        self._fault_gone = False  # the fault's condition cleared (logged once); `recover` will clear the fault
        self.hold_reason = "not configured"
        self.counts = {"applied": 0, "dropped": 0, "rejected": 0, "clipped": 0}
        self._last_status = ""
        self._clear_commands()
        self._make_io()
        self._refuse_unknown_transitions()

    # --- what the sim robot replaces ----------------------------------------------------------
    def _declare_adapter(self) -> tuple[type, Any]:
        """(adapter class, its config) from the `adapter` parameter and the `<adapter>.<field>` parameters."""
        return declare_adapter(self, self.cfg)

    def _workspace(self) -> WorkspaceBox:
        """The safety filter's box: the calibrated or the configured one."""
        return workspace_box(self.cfg)

    def make_adapter(self) -> ArmAdapter:
        """A new, unconnected adapter (at configure)."""
        return self.adapter_cls(self.adapter_cfg, control_rate_hz=self.cfg.control_rate_hz)

    def stamp_s(self) -> float:
        """Stamp of the published state: the node clock at capture."""
        return self.get_clock().now().nanoseconds * 1e-9

    def after_tick(self) -> None:
        """Called right after the adapter ticked, before the state is published (the sim robot publishes /clock)."""

    def _make_io(self) -> None:
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, topics.STATE_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, topics.EE_POSE, topics.STATE_QOS)
        self.pub_twist = self.create_publisher(TwistStamped, topics.EE_TWIST, topics.STATE_QOS)
        self.pub_gripper = self.create_publisher(JointState, topics.GRIPPER_STATE, topics.STATE_QOS)
        self.pub_status = self.create_publisher(String, ARM_STATUS, STATUS_QOS)
        self.refusals = Refusals(self)  # whatever a callback raises on refuses the message, never ends the node
        for msg_type, topic, callback, qos in (
            (TwistStamped, topics.EE_COMMAND, self._on_ee_command, topics.COMMAND_QOS),
            (PoseStamped, topics.EE_TARGET, self._on_ee_target, topics.COMMAND_QOS),
            (Float64, topics.GRIPPER_COMMAND, self._on_gripper_command, topics.COMMAND_QOS),
            (Bool, ESTOP, self._on_estop, ESTOP_QOS),
        ):
            self.create_subscription(msg_type, topic, self.refusals.guarded(topic, callback), qos)
        self.create_service(Trigger, RECOVER, self._on_recover)
        self.create_service(
            Trigger, topics.RESET, self._on_reset, callback_group=ReentrantCallbackGroup()
        )  # arm_homing.py
        if self.paced_by_timer:
            self.create_timer(self.dt_s, self.step)
        self.create_timer(1.0 / self.cfg.status_rate_hz, lambda: self.publish_status(force=True))

    # --- lifecycle ----------------------------------------------------------------------------
    def _refuse_unknown_transitions(self) -> None:
        """rclpy's `change_state` service raises RCLError on a transition id the current state lacks (`activate`
        while unconfigured, an id that does not exist), and that ends the node; here it answers success=False,
        counted under `refused` {"change_state": n} and logged, and the state stays as it was."""
        service = self._service_change_state
        change_state = service.callback

        def guarded(request, response):
            try:
                return change_state(request, response)
            except _rclpy.RCLError as err:
                state = self._state_machine.current_state[1]
                self.refusals.refuse(
                    "change_state", f"no transition {request.transition.id} from state {state!r}: {str(err)[:120]}"
                )
                response.success = False
                return response

        service.callback = guarded

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            adapter = self.make_adapter()
            adapter.attach(self)
            adapter.connect()
            self.robot = AdapterRobot(adapter, max_target_lead_m=self.cfg.max_target_lead_m)
        except (AdapterError, ValueError) as err:
            self._set_fault(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self.adapter, self.fault = adapter, ""
        self.get_logger().info(
            f"arm adapter {self.cfg.adapter!r} connected: {adapter.spec.name}, "
            f"{len(adapter.spec.joint_names)} joints, command_mode={adapter.command_mode}"
        )
        self._hold("inactive")
        self._check_driver()  # a driver that sends NaN from the start: connected, holding, faulted (status says why)
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
        self._end_homing(False, "interrupted: the node was deactivated")
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
        self._end_homing(False, "interrupted: the arm was disconnected")
        if self.robot is not None:
            try:
                self.robot.close()
            except AdapterError as err:
                self.get_logger().error(f"disconnect: {err}")
        self.robot, self.adapter = None, None
        self.hold_reason = "not configured"
        self.publish_status()

    # --- main loop ----------------------------------------------------------------------------
    def take_period_thread(self) -> None:
        """Called by the thread that will run `step`: SCHED_FIFO at `control_priority` while it runs a period,
        where permitted (else a fallback), and from `wake_lead_ms` before each period is due; log lines say."""
        self.get_logger().info(self.tick_priority.permitted("arm period thread").line)
        if self.wake_thread is None:
            self.wake_thread = WakeThread(self.wake, self.tick_priority)
            self.get_logger().info(self.wake_thread.line)
            self.cpu_latency = CpuLatencyHold(self.cfg.cpu_latency_us)  # no deep CPU idle states between periods
            self.get_logger().info(self.cpu_latency.line)

    def run(self, executor: SingleThreadedExecutor, stop: threading.Event) -> None:
        """Serve the control timer and callbacks until `stop` is set or the context shuts down."""
        self.take_period_thread()
        while not stop.is_set() and rclpy.ok(context=self.context):
            executor.spin_once(timeout_sec=0.1)

    def step(self) -> None:
        """One control period: faults, command (or hold), tick, state, home move progress."""
        if self.robot is None:
            return
        with self.tick_priority:
            self.wake.started(time.monotonic())
            self._period()

    def _period(self) -> None:
        try:
            fault = self.adapter.fault()
            if fault:
                self._set_fault(fault)
            self._apply_command()
            self.adapter.tick(self.dt_s)
            self.after_tick()
            self._publish_state()
            self._home_progress()
            if self.fault and not fault and not self._fault_gone:
                self._fault_gone = True
                self.get_logger().info(
                    f"the arm reports no fault any more ({fault_kind(self.fault)}): call `{RECOVER}`"
                )
        except AdapterError as err:
            self._set_fault(str(err))
        self.publish_status()

    def _hold(self, reason: str) -> None:
        self.hold_reason = reason
        self.safety.reset()
        if self.robot is not None:
            try:
                self.robot.hold()
            except (AdapterError, ValueError) as err:
                self.get_logger().error(f"hold failed: {err}")
        self.publish_status()

    def _check_driver(self) -> None:
        """A fault when the adapter reports one or its state cannot be read or used."""
        try:
            fault = self.adapter.fault()
            self._valid_state()
        except AdapterError as err:
            fault = str(err)
        if fault:
            self._set_fault(fault)

    def _valid_state(self):
        """The adapter's state; AdapterError when it cannot be read or is unusable (`state_problem`)."""
        state = self.robot.read()
        problem = state_problem(state, len(self.adapter.spec.joint_names))
        if problem:
            raise AdapterError(f"driver state invalid: {problem}")
        return state

    def _publish_state(self) -> None:
        state = self._valid_state()
        t_s = self.stamp_s()
        joints, pose, twist, gripper = convert.robot_state_msgs(
            dataclasses.replace(state, t_capture=t_s),
            self.adapter.spec.joint_names,
            self.adapter.finger_joints,
            self.cfg.base_frame,
            ee_angvel_rad_s=self.adapter.ee_angvel_rad_s(),
        )
        self.pub_joints.publish(joints)
        self.pub_pose.publish(pose)
        self.pub_twist.publish(twist)
        self.pub_gripper.publish(gripper)

    def close(self) -> None:
        """Hold and close the arm whatever state the node is in, then destroy the node."""
        if self.wake_thread is not None:
            self.wake_thread.close()
        if self.cpu_latency is not None:
            self.cpu_latency.close()
        self._disconnect()
        self.destroy_node()


def serve(make_node: Callable[[], ArmNode], prog: str, argv: list[str] | None = None) -> int:
    """Start rclpy, make the node, walk it to `autostart`, run it until SIGINT/SIGTERM; the exit code.

    A signal only sets a flag the node's loop checks, so it never lands inside a publish or a render: the
    node stops between two control periods and exits 0. A bad parameter or file: one line, exit 2."""
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        try:
            node = make_node()
        except (ValueError, FileNotFoundError) as err:  # a bad parameter or file
            print(f"{prog}: {err}", file=sys.stderr)
            return 2
        if node.cfg.autostart != "unconfigured":
            node.trigger_configure()
            if node.cfg.autostart == "active" and node.robot is not None:
                node.trigger_activate()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.run(executor, stop)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # SIGINT shut the context down mid-publish or mid-take (RCLError and kin): a clean exit too
        if node is None or node.context.ok():
            raise
    finally:
        if node is not None:
            node.close()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-arm-node`: `robot-rl-arm-node --ros-args -p adapter:=sim`."""
    args = sys.argv if argv is None else argv
    if "-h" in args[1:] or "--help" in args[1:]:
        print(help_text(__doc__))
        return 0
    return serve(ArmNode, "robot-rl-arm-node", args)


if __name__ == "__main__":
    sys.exit(main())
