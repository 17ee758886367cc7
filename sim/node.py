"""The simulated robot as a ROS 2 node: the MuJoCo cell behind the same topics a hardware driver has.

    robot-rl-sim-node --ros-args -r __ns:=/robot_1 -p task:=pick_cube -p seed:=3

One main loop (`SimRobotNode.run`): apply the latest command through the safety filter (or hold
when the watchdog expired), step physics one control period, publish `/clock` and the robot state,
render and publish the cameras when their period is due, then serve callbacks until the next
tick's wall-clock deadline (`real_time_factor`; 0 runs as fast as possible).

Topics, QoS and message conventions: `robot_rl.nodes.topics` and `robot_rl.nodes.convert`.
`sim_status` (std_msgs/String JSON, latched, once a wall second): sim time and `refused` {topic: count},
the command messages refused (non-finite, malformed) by `robot_rl.nodes.guard`.
Every control period it also publishes `task/success` (ground truth, what a reward classifier
publishes on hardware) and `task/object_state` (the task's privileged object state, labelled).
Every stamp is the simulation time of capture, which `/clock` publishes, so the graph runs with
`use_sim_time`. Sim time never goes backwards, also across resets.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from rclpy.clock import Clock as RosClock, ClockType  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Bool, Float32MultiArray, Float64, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_rl.interfaces import EECommand, Frame  # noqa: E402
from robot_rl.nodes import convert, task_convert, topics  # noqa: E402
from robot_rl.nodes.guard import Refusals  # noqa: E402
from robot_rl.nodes.params import declare_config  # noqa: E402
from robot_rl.safety import CommandWatchdog, SafetyFilter, SafetyLimits  # noqa: E402
from robot_rl_sim import scene  # noqa: E402
from robot_rl_sim.env import RobotCellEnv, make_task_env  # noqa: E402

SIM_STATUS = "sim_status"  # relative: /robot_1/sim_status
STATUS_RATE_HZ = 1.0  # wall clock
STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class SimNodeConfig:
    """ROS parameters of the sim robot node (one parameter per field)."""

    task: str = "pick_cube"  # robot_rl_sim task: pick_cube or peg_insert
    seed: int = 0  # seeds the node's RNG; every `reset` draws the next randomised start from it
    control_rate_hz: float = 50.0  # physics is stepped and the state published at this rate (divides 500 Hz)
    real_time_factor: float = 1.0  # sim seconds per wall second; 0 = as fast as possible
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras to render and publish
    camera_rate_hz: float = 10.0  # image + camera_info rate in sim time; 0 = publish no images
    image_size: int = 128  # square image side in pixels
    watchdog_timeout_s: float = 0.5  # hold the arm when no valid ee_command arrived for this long (sim time)
    max_step_m: float = 0.03  # safety filter: largest translation per control period
    max_speed_m_s: float = 0.30  # safety filter: translation speed limit
    max_angvel_rad_s: float = 1.5  # safety filter: rotation speed limit
    max_accel_m_s2: float = 3.0  # safety filter: limit on the change of commanded velocity
    publish_clock: bool = True  # publish /clock (remap it per robot when several sims run side by side)
    base_frame: str = topics.BASE_FRAME  # frame_id of poses, twists and accepted commands

    def validate(self) -> None:
        if self.control_rate_hz <= 0 or self.camera_rate_hz < 0 or self.real_time_factor < 0:
            raise ValueError(
                f"need control_rate_hz > 0, camera_rate_hz >= 0, real_time_factor >= 0; got "
                f"{self.control_rate_hz}, {self.camera_rate_hz}, {self.real_time_factor}")
        if self.camera_rate_hz > self.control_rate_hz:
            raise ValueError(f"camera_rate_hz={self.camera_rate_hz} cannot exceed control_rate_hz={self.control_rate_hz}")


class SimRobotNode(Node):
    """Owns one MuJoCo cell; publishes its state and cameras, takes twist and gripper commands."""

    def __init__(self, **node_kw):
        super().__init__("sim_robot", **node_kw)
        self.stop = threading.Event()  # set by main's signal handler: leave the loop between two control periods
        self.cfg = declare_config(self, SimNodeConfig())
        self.cfg.validate()
        cfg = self.cfg
        self.env: RobotCellEnv = make_task_env(
            cfg.task, obs_mode="state", image_size=cfg.image_size, cameras=cfg.cameras, control_rate_hz=cfg.control_rate_hz,
        ).unwrapped
        self.robot = self.env.robot
        self.dt_s = 1.0 / cfg.control_rate_hz
        self.safety = SafetyFilter(SafetyLimits(
            workspace=self.robot.spec.workspace, max_step_m=cfg.max_step_m, max_speed_m_s=cfg.max_speed_m_s,
            max_angvel_rad_s=cfg.max_angvel_rad_s, max_accel_m_s2=cfg.max_accel_m_s2,
        ))
        self._tcp_site = self.env.model.site(scene.TCP_SITE).id
        self._make_io()
        self.dropped_messages = 0
        self._reset_task(seed=cfg.seed)
        self.get_logger().info(
            f"sim robot up: task={cfg.task} seed={cfg.seed} control={cfg.control_rate_hz} Hz "
            f"cameras={list(cfg.cameras)}@{cfg.camera_rate_hz} Hz real_time_factor={cfg.real_time_factor}")

    def _make_io(self) -> None:
        cfg = self.cfg
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, topics.STATE_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, topics.EE_POSE, topics.STATE_QOS)
        self.pub_twist = self.create_publisher(TwistStamped, topics.EE_TWIST, topics.STATE_QOS)
        self.pub_gripper = self.create_publisher(JointState, topics.GRIPPER_STATE, topics.STATE_QOS)
        self.pub_success = self.create_publisher(Bool, topics.TASK_SUCCESS, topics.STATE_QOS)
        self.pub_object_state = self.create_publisher(Float32MultiArray, topics.TASK_OBJECT_STATE, topics.STATE_QOS)
        self.pub_clock = self.create_publisher(Clock, topics.CLOCK, topics.CLOCK_QOS) if cfg.publish_clock else None
        self.camera_specs = {}
        self.pub_images, self.pub_infos = {}, {}
        if cfg.camera_rate_hz > 0:
            for name, cam in self.env.cameras.items():
                self.camera_specs[name] = dataclasses.replace(cam.spec, rate_hz=cfg.camera_rate_hz)
                self.pub_images[name] = self.create_publisher(Image, topics.image_topic(name), topics.SENSOR_QOS)
                self.pub_infos[name] = self.create_publisher(CameraInfo, topics.camera_info_topic(name), topics.SENSOR_QOS)
        self.refusals = Refusals(self)  # whatever a callback raises on refuses the message, never ends the node
        for msg_type, topic, callback in ((TwistStamped, topics.EE_COMMAND, self._on_ee_command),
                                          (PoseStamped, topics.EE_TARGET, self._on_ee_target),
                                          (Float64, topics.GRIPPER_COMMAND, self._on_gripper_command)):
            self.create_subscription(msg_type, topic, self.refusals.guarded(topic, callback), topics.COMMAND_QOS)
        # refusals per command topic, latched, once a wall second (robot_rl.nodes.guard: a bad message never ends the node)
        self.pub_status = self.create_publisher(String, SIM_STATUS, STATUS_QOS)
        self.create_timer(1.0 / STATUS_RATE_HZ, self._publish_status, clock=RosClock(clock_type=ClockType.STEADY_TIME))
        self.create_service(Trigger, topics.RESET, self._on_reset)
        self.create_service(Trigger, topics.SUCCESS, self._on_success)

    # --- main loop ----------------------------------------------------------------------------
    def run(self, executor: SingleThreadedExecutor) -> None:
        """Step, publish, serve callbacks until the next tick; returns when the context shuts down."""
        wall_period_s = self.dt_s / self.cfg.real_time_factor if self.cfg.real_time_factor > 0 else 0.0
        deadline = time.monotonic()
        while rclpy.ok(context=self.context) and not self.stop.is_set():
            self.step()
            if wall_period_s == 0.0:
                executor.spin_once(timeout_sec=0.0)
                continue
            deadline += wall_period_s
            while (remaining_s := deadline - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining_s)
            if remaining_s < -10 * wall_period_s:  # fell far behind (a slow render, a loaded machine): re-anchor
                deadline = time.monotonic()

    def step(self) -> None:
        """One control period: command (or hold), physics, state, cameras when due."""
        self._apply_command()
        self.robot.advance(self.dt_s)
        t = self.sim_time_s
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=convert.stamp_from_seconds(t)))
        self._publish_state()
        self._publish_task()
        if self.camera_specs and t >= self._next_camera_t - 1e-9:
            self._publish_cameras()
            self._next_camera_t += 1.0 / self.cfg.camera_rate_hz
            if self._next_camera_t <= t:  # after a reset jumped time forward
                self._next_camera_t = t + 1.0 / self.cfg.camera_rate_hz

    @property
    def sim_time_s(self) -> float:
        return float(self.env.data.time)

    def _apply_command(self) -> None:
        t = self.sim_time_s
        if self.watchdog.expired(t):
            if not self._holding:
                self.robot.hold()
                self.safety.reset()
                self._holding = True
                if self._commanded:
                    self.get_logger().warning(f"no ee_command for {self.cfg.watchdog_timeout_s} s: holding the arm")
            return
        if self._target is not None:  # pose target: the delta to it, which the safety filter bounds per period
            cmd = EECommand(*self._delta_to(*self._target), self._gripper)
        else:
            cmd = EECommand(self._vel_m_s * self.dt_s, self._angvel_rad_s * self.dt_s, self._gripper)  # twist * dt
        result = self.safety.filter(cmd, self.robot.controller.target_pos_m, self.dt_s, last_gripper=self._gripper)
        if result.rejected:  # a hold (the filter also rejects a non-finite controller target: never a crash)
            self.get_logger().warning(f"safety filter: {result.reason}", throttle_duration_sec=1.0)
            self.robot.hold()
            self._holding = True
            return
        self.robot.command(result.command)
        self._holding = False

    def _publish_state(self) -> None:
        state = self.robot.read()
        vel6 = np.zeros(6)  # (angular, linear) of the tool point, base frame
        mujoco.mj_objectVelocity(self.env.model, self.env.data, mujoco.mjtObj.mjOBJ_SITE, self._tcp_site, vel6, 0)
        joints, pose, twist, gripper = convert.robot_state_msgs(
            state, self.robot.spec.joint_names, scene.FINGER_JOINTS, self.cfg.base_frame, ee_angvel_rad_s=vel6[:3])
        self.pub_joints.publish(joints)
        self.pub_pose.publish(pose)
        self.pub_twist.publish(twist)
        self.pub_gripper.publish(gripper)

    def _publish_task(self) -> None:
        """Ground-truth success and the labelled object state, every control period."""
        task = self.env.task
        self.pub_success.publish(Bool(data=bool(task.is_success())))
        self.pub_object_state.publish(task_convert.object_state_msg(task.object_state(), task.object_state_layout))

    def _publish_cameras(self) -> None:
        t = self.sim_time_s
        for name, image in self.env.rig.render().items():
            spec = self.camera_specs[name]
            self.pub_images[name].publish(convert.image_msg(Frame(image, t), spec.frame_id))
            self.pub_infos[name].publish(convert.camera_info_msg(spec, t))

    def _publish_status(self) -> None:
        """sim_status: sim time and {topic: refused messages} (std_msgs/String JSON)."""
        status = {"sim_time_s": round(self.sim_time_s, 6), "refused": self.refusals.as_dict()}
        self.pub_status.publish(String(data=json.dumps(status)))

    # --- callbacks ----------------------------------------------------------------------------
    def _drop(self, topic: str, err: Exception) -> None:
        """A malformed command: counted per topic for sim_status, and logged."""
        self.dropped_messages += 1
        self.refusals.counts[topic] += 1
        self.get_logger().warning(f"dropped {topic} message ({self.dropped_messages} so far): {err}",
                                  throttle_duration_sec=1.0)

    def _on_ee_command(self, msg: TwistStamped) -> None:
        try:
            self._vel_m_s, self._angvel_rad_s = convert.velocity_from_twist(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            self._drop(topics.EE_COMMAND, err)
            return
        self._target = None  # the newest command kind wins
        self._commanded = True
        self.watchdog.feed(self.sim_time_s)

    def _on_ee_target(self, msg: PoseStamped) -> None:
        try:
            self._target = convert.target_from_pose(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            self._drop(topics.EE_TARGET, err)
            return
        self._vel_m_s, self._angvel_rad_s = np.zeros(3), np.zeros(3)
        self._commanded = True
        self.watchdog.feed(self.sim_time_s)

    def _delta_to(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(translation m, rotation vector rad) from the controller's current target to a pose target, base frame."""
        ctl = self.robot.controller
        inverse, rel, rotvec = np.zeros(4), np.zeros(4), np.zeros(3)
        mujoco.mju_negQuat(inverse, ctl.target_quat_wxyz)
        mujoco.mju_mulQuat(rel, quat_wxyz, inverse)
        mujoco.mju_quat2Vel(rotvec, rel, 1.0)
        return pos_m - ctl.target_pos_m, rotvec

    def _on_gripper_command(self, msg: Float64) -> None:
        try:
            closing = convert.gripper_from_msg(msg)
        except convert.MessageError as err:
            self._drop(topics.GRIPPER_COMMAND, err)
            return
        self._gripper = float(np.clip(closing, 0.0, 1.0))
        self.robot.set_gripper(self._gripper)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_task(seed=None)
        response.success = True
        response.message = f"reset {self.cfg.task} episode {self.episode} at sim time {self.sim_time_s:.3f} s"
        return response

    def _on_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = bool(self.env.task.is_success())
        response.message = f"dense_reward={self.env.task.dense_reward():.4f}"
        return response

    def _reset_task(self, seed: int | None) -> None:
        """Randomised task reset from the node's RNG; sim time continues from where it was (plus the settle time)."""
        t_before = self.sim_time_s
        self.env.reset(seed=seed)  # restarts data.time at 0 and settles the arm at its random start
        self.env.data.time += t_before
        self.episode = 0 if seed is not None else self.episode + 1
        self.watchdog = CommandWatchdog(self.cfg.watchdog_timeout_s)  # no command yet: hold until one arrives
        self.safety.reset()
        self._vel_m_s, self._angvel_rad_s = np.zeros(3), np.zeros(3)
        self._target: tuple[np.ndarray, np.ndarray] | None = None  # latest ee_target (pos m, quat wxyz)
        self._gripper = 0.0
        self._holding, self._commanded = False, False
        self._next_camera_t = self.sim_time_s


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-sim-node`: `robot-rl-sim-node --ros-args -r __ns:=/robot_1 -p task:=peg_insert`."""
    # SIGINT/SIGTERM only set a flag the main loop checks: a signal never lands inside a publish or a render,
    # so the node always stops between two control periods and exits 0.
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = SimRobotNode()
        node.stop = stop
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.run(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # SIGINT shut the context down mid-publish or mid-take (RCLError and kin): a clean exit too
        if node is None or node.context.ok():
            raise
    except ValueError as err:  # a bad parameter: say which, exit non-zero
        print(f"robot-rl-sim-node: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.env.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
